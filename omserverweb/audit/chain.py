"""Hash chains over audit events (one chain per host) and job records (one chain).

Each record stores ``prev_hash``, ``chain_hash = HMAC-SHA256(key, prev_hash +
content)``, the id of the key (``chain_key``, see :mod:`.chainkeys`) and its
position in the chain; the chain's ``ChainHead`` row holds the last hash.
Editing a record breaks its own hash, deleting one breaks the next record's
link (or, for the last one, the head); and since the key is not in the
database, a database writer cannot recompute the hashes after an edit.
Links are made while the head row is locked (``SELECT … FOR UPDATE``), so
concurrent writers queue per chain instead of forking it.

Links made before the keys existed are plain sha256 (``chain_key`` empty). The
head says how many such links the chain had (``legacy_length``) and where its
kept part starts (``anchor_*``, moved by retention); both are sealed with a key
(``seal``), so neither can be moved to pass off a rewritten or cut chain.
What a key cannot show is the removal of a chain's last links together with the
matching head update: checkpoints kept outside the database (:mod:`.checkpoints`)
catch that.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from omserverweb.audit.chainkeys import Keyring, keyring
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


def _body(values: Iterable[Any]) -> bytes:
    return json.dumps(
        [_canonical(v) for v in values],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    ).encode()


def unkeyed_hash(prev_hash: str, content: Iterable[Any]) -> str:
    """A link as made before the keys: sha256 of its predecessor's hash and its content."""
    return hashlib.sha256(_body([prev_hash, *content])).hexdigest()


def sign(ring: Keyring, prev_hash: str, content: Iterable[Any]) -> tuple[str, str]:
    """The id of the current key and the HMAC of a new link under it."""
    return ring.sign(_body([prev_hash, *content]))


SEALED = ("scope", "anchor_pos", "anchor_hash", "legacy_length", "legacy_hash")


def head_seal(head: ChainHead, ring: Keyring | None = None) -> dict[str, str]:
    """The ``seal`` and ``seal_key`` that vouch for a head's anchor and legacy part."""
    key, seal = (ring or keyring()).sign(_body(["chain head", *(getattr(head, f) for f in SEALED)]))
    return {"seal": seal, "seal_key": key}


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


Row = tuple[int, int, str, str, str, list[Any]]  # id, position, prev, hash, key id, content


def _head_problem(head: ChainHead, ring: Keyring) -> str | None:
    """Why the head's anchor and legacy part cannot be trusted, or None."""
    if not head.seal:
        default = (head.anchor_pos, head.anchor_hash, head.legacy_length) == (1, GENESIS, 0)
        return None if default else "chain head's anchor or legacy part altered (no seal)"
    expected = ring.mac(head.seal_key, _body(["chain head", *(getattr(head, f) for f in SEALED)]))
    if expected is None:
        return f"chain head sealed with key {head.seal_key!r}, which the key file lacks"
    if not hmac.compare_digest(expected, head.seal):
        return "chain head's anchor or legacy part altered (seal does not match)"
    return None


def _link_problem(ring: Keyring, head: ChainHead, row: Row) -> str | None:
    _, pos, prev_hash, stored_hash, key, content = row
    if not key:
        if pos > head.legacy_length:
            return "record altered (unkeyed hash where the chain is keyed)"
        if pos == head.legacy_length and stored_hash != head.legacy_hash:
            return "record altered (the unkeyed part no longer ends as sealed)"
        expected = unkeyed_hash(prev_hash, content)
    else:
        expected = ring.mac(key, _body([prev_hash, *content]))
        if expected is None:
            return f"signed with key {key!r}, which the key file lacks"
    return None if hmac.compare_digest(expected, stored_hash) else "record altered"


def verify_chain(
    head: ChainHead | None, scope: str, rows: Iterator[Row], ring: Keyring | None = None
) -> Problem | None:
    """Walk ``rows`` (id, position, prev_hash, chain_hash, key id, content) in position order.

    Returns the first record altered, or the position where records went missing.
    """
    if head is None:
        first = next(rows, None)
        if first is None:
            return None
        return Problem(scope, first[0], first[1], "records without a chain head (inserted)")
    ring = ring or keyring()
    expected_pos, expected_prev = head.anchor_pos, head.anchor_hash
    if reason := _head_problem(head, ring):
        return Problem(scope, None, expected_pos, reason)
    for row in rows:
        record_id, pos, prev_hash, stored_hash = row[:4]
        if pos is None:
            return Problem(scope, record_id, 0, "record inserted outside the chain")
        if pos != expected_pos:
            return Problem(scope, record_id, expected_pos, f"record removed (next kept is {pos})")
        if prev_hash != expected_prev:
            return Problem(scope, record_id, pos, "link to the previous record altered")
        if reason := _link_problem(ring, head, row):
            return Problem(scope, record_id, pos, reason)
        expected_pos, expected_prev = pos + 1, stored_hash
    if head.legacy_length >= expected_pos:
        return Problem(scope, None, expected_pos, "unkeyed record(s) removed")
    if expected_pos != head.length + 1 or expected_prev != head.last_hash:
        return Problem(scope, None, expected_pos, "last record(s) removed")
    return None


@transaction.atomic
def rewind_anchor(scope: str, pos: int, last_pruned_hash: str) -> None:
    """After retention removed positions < ``pos``, the chain starts there (sealed anew)."""
    head = ChainHead.objects.select_for_update().get(scope=scope)
    head.anchor_pos, head.anchor_hash = pos, last_pruned_hash
    ChainHead.objects.filter(pk=head.pk).update(
        anchor_pos=pos, anchor_hash=last_pruned_hash, **head_seal(head)
    )


def seal_unkeyed(heads: QuerySet) -> None:
    """Mark each chain's links so far as unkeyed and seal that (the migration to keys)."""
    ring = keyring()
    for head in heads.filter(length__gt=0):
        head.legacy_length, head.legacy_hash = head.length, head.last_hash
        seal = head_seal(head, ring)
        head.seal, head.seal_key = seal["seal"], seal["seal_key"]
        head.save(update_fields=["legacy_length", "legacy_hash", "seal", "seal_key"])
