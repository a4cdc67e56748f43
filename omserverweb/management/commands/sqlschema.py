from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from omserver.config import env_name
from omserverweb.schema import migration_sql, mysql_connection


class Command(BaseCommand):
    help = "Print (or write) the MySQL schema the migrations create."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database-url",
            required=True,
            help=f"a mysql:// URL to generate against (e.g. ${env_name('database.url')})",
        )
        parser.add_argument("--output", type=Path, help="write here instead of stdout")

    def handle(self, *args, database_url: str, output: Path | None, **options) -> None:
        try:
            connection = mysql_connection(database_url)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        try:
            sql = migration_sql(connection)
        finally:
            connection.close()
        if output:
            output.write_text(sql)
        else:
            self.stdout.write(sql, ending="")
