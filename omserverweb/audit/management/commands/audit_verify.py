"""Check the hash chains of audit events and job records; exit 1 on the first break."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from omserverweb.audit import services


class Command(BaseCommand):
    help = "Verify the tamper-evident chains; name the first altered or removed record."

    def handle(self, *args: object, **options: object) -> None:
        problems = services.verify_all()
        for problem in problems:
            self.stderr.write(str(problem))
        if problems:
            raise CommandError(f"{len(problems)} chain(s) broken")
        self.stdout.write("every chain verifies")
