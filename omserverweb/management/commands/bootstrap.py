from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from omserver.files import write_private
from omserverweb.audit.chainkeys import keyring
from omserverweb.inventory.models import FunctionCategory

DEMO_FIXTURE = settings.BASE_DIR / "sql" / "demo-data.json"


class Command(BaseCommand):
    help = "First-start set-up: migrate, load the demo data once, create the admin account."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--admin", default="admin", help="admin user name")
        parser.add_argument("--no-demo", action="store_true", help="skip the demo data")

    def handle(self, *args, admin: str, no_demo: bool, **options) -> None:
        keyring()  # the hash chains' keys, made (0600) before the first link
        call_command("migrate", interactive=False, verbosity=0)
        if not no_demo and not FunctionCategory.objects.exists():
            call_command("loaddata", DEMO_FIXTURE, verbosity=0)
            self.stdout.write("Loaded the demo data (4 servers, modules 1001-1007).")
        self._ensure_admin(admin, Path(settings.DATA_DIR) / "admin-password")

    @transaction.atomic
    def _ensure_admin(self, username: str, password_file: Path) -> None:
        User = get_user_model()  # noqa: N806
        if User.objects.filter(username=username).exists():
            hint = f" (password in {password_file})" if password_file.exists() else ""
            self.stdout.write(f"Admin account: {username}{hint}")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username, email="", password=password)
        write_private(password_file, password + "\n")
        self.stdout.write(self.style.SUCCESS(f"Admin account: {username} / {password}"))
        self.stdout.write(f"(also kept in {password_file})")
