"""Model and form choices made from :mod:`omserver.vocabulary`, with translated labels."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


def choices(values: Iterable[str]) -> list[tuple[str, Promise]]:
    """``[(value, translated value), …]``: the word is its own label, translated."""
    return [(str(value), _(str(value))) for value in values]
