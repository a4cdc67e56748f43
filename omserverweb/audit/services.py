"""Reading the audit trail: filters, alert flags, CSV, chain checks and retention."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from operator import or_

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from omserverweb.audit.chain import EVENT_FIELDS, Problem, host_scope, rewind_anchor, verify_chain
from omserverweb.audit.jobchain import verify_jobs
from omserverweb.audit.models import AlertRule, ChainHead, CommandEvent
from omserverweb.inventory.models import Server

CSV_COLUMNS = ("id", "event_time", "host", "user", "source", "cwd", "command", "seq")
# An ingest batch takes its ids when it is written and shows them when it commits,
# well within this: batches of different hosts commit out of id order.
SETTLE = timedelta(seconds=10)


@dataclass
class EventFilter:
    """What the console asks for; empty fields mean "any"."""

    servers: list[int]
    categories: list[int]
    user: str = ""
    since: datetime | None = None
    until: datetime | None = None
    text: str = ""
    alerts_only: bool = False
    after: int = 0  # live tail: only ids above this

    def apply(self, events: QuerySet[CommandEvent]) -> QuerySet[CommandEvent]:
        hosts = Server.objects.filter(
            Q(pk__in=self.servers) | Q(app_category__in=self.categories)
        ).values("hostname")
        if self.servers or self.categories:
            events = events.filter(host__in=hosts)
        if self.user:
            events = events.filter(user=self.user)
        if self.since:
            events = events.filter(event_time__gte=self.since)
        if self.until:
            events = events.filter(event_time__lt=self.until)
        if self.text:
            events = events.filter(command__icontains=self.text)
        if self.after:
            events = events.filter(pk__gt=self.after)
        if self.alerts_only:
            events = events.filter(alert_q())
        return events


def settled_id() -> int:
    """The highest event id that no batch still committing can be below."""
    cutoff = timezone.now() - SETTLE
    old = CommandEvent.objects.filter(received_at__lt=cutoff).order_by("-pk")
    return old.values_list("pk", flat=True).first() or 0


def tail_cursor(after: int, rows: list[CommandEvent], limit: int) -> int:
    """Where the live tail's next poll starts, having been sent ``rows`` (ids > ``after``).

    Not simply the last id sent: an event committed late, below it, would be
    missed. The tail asks again from the settled id and skips what it shows.
    """
    cursor = settled_id()
    if len(rows) >= limit:  # more to come above the last one sent
        cursor = min(cursor, rows[-1].pk)
    return max(after, cursor)


def active_rules() -> list[AlertRule]:
    return list(AlertRule.objects.filter(enabled=True))


def alert_q(rules: Iterable[AlertRule] | None = None) -> Q:
    """Matches any enabled rule, evaluated by the database (MariaDB PCRE, SQLite re)."""
    rules = active_rules() if rules is None else list(rules)
    if not rules:
        return Q(pk__in=[])
    return reduce(or_, (Q(command__regex=r.pattern) for r in rules))


def flag(
    events: Iterable[CommandEvent], rules: list[AlertRule]
) -> list[tuple[CommandEvent, list[str]]]:
    """Each event with the names of the rules its command matches."""
    compiled = [(r.name, re.compile(r.pattern)) for r in rules]
    return [(e, [name for name, rx in compiled if rx.search(e.command)]) for e in events]


def csv_rows(events: QuerySet[CommandEvent]) -> Iterator[str]:
    """The CSV export, streamed; cells a spreadsheet would run as formulas are quoted."""

    class Line:
        def write(self, value: str) -> str:
            return value

    writer = csv.writer(Line())
    yield writer.writerow(CSV_COLUMNS)
    for row in events.values_list(*CSV_COLUMNS).iterator(chunk_size=2000):
        yield writer.writerow([_cell(v) for v in row])


def _cell(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def verify_events(hosts: Iterable[str] | None = None) -> list[Problem]:
    """The first break in each host's chain (every host when ``hosts`` is None)."""
    if hosts is None:
        from_heads = ChainHead.objects.filter(scope__startswith="host:").values_list(
            "scope", flat=True
        )
        hosts = {s.removeprefix("host:") for s in from_heads}
        hosts |= set(CommandEvent.objects.values_list("host", flat=True).distinct())
    problems = []
    for host in sorted(hosts):
        scope = host_scope(host)
        rows = (
            (*r[:5], list(r[5:]))
            for r in CommandEvent.objects.filter(host=host)
            .order_by("chain_pos")
            .values_list("id", "chain_pos", "prev_hash", "chain_hash", "chain_key", *EVENT_FIELDS)
            .iterator(chunk_size=2000)
        )
        problem = verify_chain(ChainHead.objects.filter(scope=scope).first(), scope, rows)
        if problem:
            problems.append(problem)
    return problems


def verify_all() -> list[Problem]:
    job_problem = verify_jobs()
    return [*verify_events(), *([job_problem] if job_problem else [])]


def retention_days() -> int:
    return settings.AUDIT_RETENTION_DAYS


def prune(days: int, now: datetime | None = None) -> int:
    """Delete events received more than ``days`` ago, host by host, oldest first.

    Only a prefix of each chain goes, and the head remembers where the kept part
    starts, so the chain stays verifiable from the first kept record.
    """
    cutoff = (now or timezone.now()) - timedelta(days=days)
    removed = 0
    hosts = CommandEvent.objects.filter(received_at__lt=cutoff).values_list("host", flat=True)
    for host in sorted(set(hosts)):
        with transaction.atomic():
            old = CommandEvent.objects.filter(host=host, received_at__lt=cutoff)
            last = old.order_by("-chain_pos").values_list("chain_pos", "chain_hash").first()
            if last is None:
                continue
            rewind_anchor(host_scope(host), last[0] + 1, last[1])
            removed += CommandEvent.objects.filter(host=host, chain_pos__lte=last[0]).delete()[0]
    return removed
