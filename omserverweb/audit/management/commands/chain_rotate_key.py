"""Start signing chain links with a new key; the old ones stay to verify old links."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from omserverweb.audit.chainkeys import key_file


class Command(BaseCommand):
    help = "Add a new key to the chain key file and make it the one new links are signed with."

    def handle(self, *args: object, **options: object) -> None:
        keys = key_file()
        ident = keys.rotate()
        self.stdout.write(
            f"new chain key {ident} in {keys.path}; copy the file (0600) to every host that "
            "runs the web or a daemon"
        )
