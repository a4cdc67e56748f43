"""Model and form choices made from :mod:`omserver.vocabulary`, with translated labels.

The vocabulary says which statuses exist; this says how each reads in the
console. ``choices`` fails at import when a status has no label, so a status
added to the vocabulary cannot reach a page unlabelled.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from omserver.vocabulary import HostStatus, JobStatus

LABELS: dict[str, Promise] = {
    JobStatus.QUEUED: _("queued"),
    JobStatus.RUNNING: _("running"),
    JobStatus.SUCCEEDED: _("succeeded"),
    JobStatus.FAILED: _("failed"),
    JobStatus.PARTIAL: _("partial"),
    JobStatus.TIMEOUT: _("timeout"),
    JobStatus.CANCELLED: _("cancelled"),
    JobStatus.INTERRUPTED: _("interrupted"),
    HostStatus.OK: _("ok"),  # running, failed, timeout, cancelled: the same words as the jobs'
    HostStatus.UNREACHABLE: _("unreachable"),
    HostStatus.NOT_RUN: _("not run"),
    HostStatus.UNKNOWN: _("unknown"),
}


def choices(values: Iterable[str]) -> list[tuple[str, Promise]]:
    """``[(value, translated label), …]`` for each of ``values``."""
    return [(str(value), LABELS[value]) for value in values]
