"""Start-up checks that turn a bad deployment into one clear message."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register
from django.db import DatabaseError, connections

from omserver.config import env_name

TAG = "omserver"


@register(TAG)
def database_reachable(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Connect once, so a wrong URL or a down server is named at start-up."""
    connection = connections["default"]
    try:
        connection.ensure_connection()
    except DatabaseError as exc:
        settings = connection.settings_dict
        where = f"{settings.get('ENGINE', '?').rsplit('.', 1)[-1]} database "
        where += f"{settings.get('NAME')!s} at {settings.get('HOST') or 'localhost'}"
        return [
            Error(
                f"cannot connect to the {where}: {exc}",
                hint=f"check {env_name('database.url')} (or [database] url in OMSERVER_CONFIG)",
                id="omserver.E001",
            )
        ]
    return []
