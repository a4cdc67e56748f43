"""Check the hash chains of audit events and job records; exit 1 on the first break."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from omserverweb.audit import checkpoints, services


class Command(BaseCommand):
    help = "Verify the tamper-evident chains; name the first altered or removed record."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoint",
            action="store_true",
            help="also compare with the chain heads saved last time (audit.checkpoint_file) "
            "and, when every chain verifies, save the current ones",
        )

    def handle(self, *args: object, checkpoint: bool = False, **options: object) -> None:
        path = checkpoints.checkpoint_file()
        current = checkpoints.heads()  # before the walk: links made meanwhile come after
        problems = services.verify_all()
        if checkpoint:
            problems += checkpoints.compare(checkpoints.load(path))
        for problem in problems:
            self.stderr.write(str(problem))
        if problems:
            raise CommandError(f"{len(problems)} chain(s) broken")
        if checkpoint:
            checkpoints.save(path, current)
            self.stdout.write(f"every chain verifies; heads saved to {path}")
        else:
            self.stdout.write("every chain verifies")
