"""What the daemon checks client keys' scopes against, and where it keeps their refusals.

This module is the daemon's :class:`omserver.daemon.scopes.ScopeRecord` (the
``rundaemon`` command hands it in, beside the jobs recorder).
"""

from __future__ import annotations

from omserver.protocol.scope import InventoryHost
from omserverweb.access.models import KeyRefusal
from omserverweb.inventory.models import Server
from omserverweb.jobs.models import Job

# The recorder's own guard: a daemon thread may have idled past the database's timeout.
from omserverweb.jobs.recorder import fresh_connection


@fresh_connection
def inventory_hosts(hostnames: list[str]) -> dict[str, InventoryHost]:
    """The enabled servers among ``hostnames``, with their application and zone."""
    servers = Server.objects.filter(hostname__in=hostnames, enabled=True).select_related(
        "app_category__function"
    )
    return {
        s.hostname: InventoryHost(
            s.as_target(), f"{s.app_category.function.name}/{s.app_category.name}", s.zone
        )
        for s in servers
    }


@fresh_connection
def job_client(job_id: int) -> str | None:
    return Job.objects.filter(pk=job_id).values_list("client", flat=True).first()


@fresh_connection
def key_refused(*, client: str, operation: str, reason: str) -> None:
    KeyRefusal.objects.create(client=client[:100], operation=operation[:20], reason=reason)
