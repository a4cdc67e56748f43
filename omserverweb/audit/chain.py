"""Hash chains over audit events (one chain per host) and job records (one chain).

Each record stores ``prev_hash`` and ``chain_hash = sha256(prev_hash + content)``
and its position in the chain; the chain's ``ChainHead`` row holds the last hash.
Editing a record breaks its own hash, deleting one breaks the next record's
link (or, for the last one, the head). Links are made while the head row is
locked (``SELECT … FOR UPDATE``), so concurrent writers queue per chain instead
of forking it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction

from omserverweb.audit.models import ChainHead

GENESIS = "0" * 64
JOBS_SCOPE = "jobs"
EVENT_FIELDS = ("host", "user", "source", "cwd", "command", "event_time", "seq", "chain_pos")


def host_scope(host: str) -> str:
    return f"host:{host}"


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value


def link_hash(prev_hash: str, content: Iterable[Any]) -> str:
    """The hash of one record: its predecessor's hash and its content as canonical JSON."""
    body = json.dumps(
        [prev_hash, *(_canonical(v) for v in content)],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def event_content(event: dict[str, Any]) -> list[Any]:
    return [event[f] for f in EVENT_FIELDS]


def ensure_heads(scopes: Iterable[str]) -> None:
    """Create missing heads, each in its own short transaction.

    Call outside the writer's transaction: an ``INSERT IGNORE`` held open there
    takes gap locks that deadlock concurrent writers of other chains.
    """
    names = set(scopes)
    names -= set(ChainHead.objects.filter(scope__in=names).values_list("scope", flat=True))
    if names:
        ChainHead.objects.bulk_create(
            [ChainHead(scope=s, last_hash=GENESIS, anchor_hash=GENESIS) for s in sorted(names)],
            ignore_conflicts=True,
        )


def locked_heads(scopes: Iterable[str]) -> dict[str, ChainHead]:
    """Lock the (existing) heads in name order, so two writers never deadlock on them.

    Call inside ``transaction.atomic``.
    """
    names = sorted(set(scopes))
    heads = ChainHead.objects.select_for_update().filter(scope__in=names).order_by("scope")
    return {h.scope: h for h in heads}


@dataclass(frozen=True)
class Problem:
    """The first break found in one chain."""

    chain: str
    record: int | None  # id of the altered record, or of the one after a removal
    position: int
    reason: str

    def __str__(self) -> str:
        where = f"#{self.record}" if self.record is not None else "end"
        return f"{self.chain}: position {self.position} ({where}): {self.reason}"


def verify_chain(
    head: ChainHead | None, scope: str, rows: Iterator[tuple[int, int, str, str, list[Any]]]
) -> Problem | None:
    """Walk ``rows`` (id, position, prev_hash, chain_hash, content) in position order.

    Returns the first record altered, or the position where records went missing.
    """
    expected_pos = head.anchor_pos if head else 1
    expected_prev = head.anchor_hash if head else GENESIS
    if head is None:
        first = next(rows, None)
        if first is None:
            return None
        return Problem(scope, first[0], first[1], "records without a chain head (inserted)")
    for record_id, pos, prev_hash, stored_hash, content in rows:
        if pos is None:
            return Problem(scope, record_id, 0, "record inserted outside the chain")
        if pos != expected_pos:
            return Problem(scope, record_id, expected_pos, f"record removed (next kept is {pos})")
        if prev_hash != expected_prev:
            return Problem(scope, record_id, pos, "link to the previous record altered")
        if link_hash(prev_hash, content) != stored_hash:
            return Problem(scope, record_id, pos, "record altered")
        expected_pos, expected_prev = pos + 1, stored_hash
    if expected_pos != head.length + 1 or expected_prev != head.last_hash:
        return Problem(scope, None, expected_pos, "last record(s) removed")
    return None


@transaction.atomic
def rewind_anchor(scope: str, pos: int, last_pruned_hash: str) -> None:
    """After retention removed positions < ``pos``, the chain starts there."""
    ChainHead.objects.filter(scope=scope).update(anchor_pos=pos, anchor_hash=last_pruned_hash)
