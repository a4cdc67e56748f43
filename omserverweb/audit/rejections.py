"""Events ingest refused, kept per host until a resend of each is stored.

A host's agent keeps what the server refused and sends it again now and then,
so an event refused for a cause fixed on the server (a token that did not cover
the host, a host not yet in the inventory, a clock ahead) is stored on a later
try and leaves this list. The console shows the hosts with events still refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import Count, F, Max, Min, OuterRef, Subquery
from django.utils import timezone

from omserverweb.audit.models import RejectedEvent
from omserverweb.audit.tokens import TokenCoverage

if TYPE_CHECKING:  # ingest calls resolve: a run-time import would be circular
    from omserverweb.audit.ingest import BatchError

log = logging.getLogger("omserverweb.audit")

# A token's holder names the hosts in its events: at most this many refused events
# are kept per token, so that a faulty (or hostile) agent cannot fill the table.
MAX_PER_TOKEN = 10_000
REASON_LENGTH = 500


def record(coverage: TokenCoverage, error: BatchError) -> None:
    """Note the event ``error`` refused (when the error names one)."""
    if error.event is None or coverage.token_id is None:
        return
    host, seq = error.event
    reason = error.reason[:REASON_LENGTH]
    now = timezone.now()
    kept = RejectedEvent.objects.filter(host=host, seq=seq)
    if kept.update(reason=reason, last_at=now, attempts=F("attempts") + 1):
        return
    if RejectedEvent.objects.filter(token_id=coverage.token_id).count() >= MAX_PER_TOKEN:
        log.warning("refused event %s #%s not kept: its token has too many", host, seq)
        return
    RejectedEvent.objects.bulk_create(
        [RejectedEvent(host=host, seq=seq, token_id=coverage.token_id, reason=reason, last_at=now)],
        ignore_conflicts=True,  # the same event refused in a concurrent request
    )


def resolve(seqs_by_host: dict[str, list[int]]) -> None:
    """These events are stored now (or were already): no longer refused.

    Called after the batch committed, outside its transaction: the deletion's
    locks never stretch the chain heads' lock.
    """
    if not RejectedEvent.objects.exists():  # the usual case: one cheap query
        return
    for host, seqs in seqs_by_host.items():
        RejectedEvent.objects.filter(host=host, seq__in=seqs).delete()


@dataclass(frozen=True)
class HostRejections:
    host: str
    events: int
    first_at: datetime
    last_at: datetime
    reason: str  # the latest
    token: str


def by_host() -> list[HostRejections]:
    """The hosts with events still refused, the most recently refused first."""
    latest = RejectedEvent.objects.filter(host=OuterRef("host")).order_by("-last_at", "-pk")
    rows = (
        RejectedEvent.objects.values("host")
        .annotate(
            events=Count("pk"),
            first=Min("first_at"),
            last=Max("last_at"),
            reason=Subquery(latest.values("reason")[:1]),
            token=Subquery(latest.values("token__name")[:1]),
        )
        .order_by("-last", "host")
    )
    return [
        HostRejections(r["host"], r["events"], r["first"], r["last"], r["reason"], r["token"])
        for r in rows
    ]
