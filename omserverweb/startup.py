"""Fail fast when a server process starts against a broken deployment."""

from __future__ import annotations

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from omserverweb.checks import TAG


def assert_ready() -> None:
    """Raise with every start-up error, each naming the setting to fix."""
    errors = [m for m in checks.run_checks(tags=[TAG]) if m.is_serious()]
    if errors:
        raise ImproperlyConfigured("; ".join(f"{e.msg} ({e.hint})" for e in errors))
