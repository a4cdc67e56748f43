"""Delete audit events older than the retention period (cron or a systemd timer)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from omserverweb.audit import services


class Command(BaseCommand):
    help = "Delete audit events received longer ago than the retention period."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="keep this many days (default: OMSERVER_AUDIT_RETENTION_DAYS, 365)",
        )

    def handle(self, *args: object, days: int | None = None, **options: object) -> None:
        keep = services.retention_days() if days is None else days
        removed = services.prune(keep)
        self.stdout.write(f"removed {removed} event(s) older than {keep} day(s)")
