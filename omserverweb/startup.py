"""Fail fast when a server process starts against a broken deployment."""

from __future__ import annotations

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from omserverweb.checks import TAG


def assert_ready() -> None:
    """Raise with every start-up error, each naming the setting to fix.

    The connection the check opened is closed again: uWSGI loads the app in its
    master and then forks, and workers must not share one database socket.
    """
    try:
        errors = [m for m in checks.run_checks(tags=[TAG]) if m.is_serious()]
    finally:
        connections.close_all()
    if errors:
        raise ImproperlyConfigured("; ".join(f"{e.msg} ({e.hint})" for e in errors))
