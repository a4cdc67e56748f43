"""What the console's scripts need from the shared vocabulary."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from omserver.vocabulary import ACTIVE_STATUSES
from omserverweb.jobs.models import HOST_STATUS_CHOICES, JOB_STATUS_CHOICES


def statuses(request: HttpRequest) -> dict[str, Any]:
    """Job and host statuses with their translated labels, and the ones still active,
    for ``results.js`` (``{{ om_statuses|json_script:"om-statuses" }}``): the
    scripts spell no status of their own."""
    return {
        "om_statuses": {
            "labels": dict(JOB_STATUS_CHOICES + HOST_STATUS_CHOICES),
            "active": sorted(ACTIVE_STATUSES),
        }
    }
