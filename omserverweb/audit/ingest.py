"""Validate a batch of command events and store it: all of it, or nothing.

A batch is ``{"events": [{"host", "user", "source", "cwd", "command", "time",
"seq"}, …]}``; ``time`` is ISO 8601 with an offset. An event whose (host, seq)
is already stored is skipped, so an agent may resend whatever it is unsure of.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from omserverweb import request_limits
from omserverweb.audit import rejections
from omserverweb.audit.chain import ensure_heads, event_content, host_scope, locked_heads, sign
from omserverweb.audit.chainkeys import keyring
from omserverweb.audit.models import ChainHead, CommandEvent
from omserverweb.audit.tokens import TokenCoverage

MAX_EVENTS = 1000
MAX_COMMAND = 16_384
FIELDS = {"host": 253, "user": 64, "source": 255, "cwd": 1024}
REQUIRED = ("host", "user", "command", "time", "seq")
OLDEST = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(hours=1)
MAX_SEQ = 2**63 - 1


class BatchError(ValueError):
    """The batch is refused; the message says why (and which event).

    ``event`` is the refused event's (host, seq) when it states them well-formed,
    ``reason`` the message without the event's place in the batch.
    """

    def __init__(self, message: str, event: tuple[str, int] | None = None, reason: str = ""):
        super().__init__(message)
        self.event = event
        self.reason = reason or message


@dataclass(frozen=True)
class Stored:
    received: int
    stored: int

    @property
    def duplicates(self) -> int:
        return self.received - self.stored


def parse(body: bytes, coverage: TokenCoverage) -> list[dict[str, Any]]:
    """Events from a request body, each checked; raises BatchError for the first fault.

    The body's size was checked before (``audit.max_batch_bytes``, a 413).
    """
    try:
        data = request_limits.loads(body)
    except request_limits.BodyError as exc:
        raise BatchError(str(exc)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BatchError(f"not JSON: {exc}") from None
    events = data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list) or not events:
        raise BatchError('expected {"events": [ … ]} with at least one event')
    if len(events) > MAX_EVENTS:
        raise BatchError(f"more than {MAX_EVENTS} events in one batch")
    latest = timezone.now() + CLOCK_SKEW
    return [_event(i, raw, coverage, latest) for i, raw in enumerate(events)]


def _named(raw: Any) -> tuple[str, int] | None:
    """The (host, seq) an event states, if both are well-formed."""
    host, seq = (raw.get("host"), raw.get("seq")) if isinstance(raw, dict) else (None, None)
    if isinstance(host, str) and 0 < len(host) <= FIELDS["host"] and type(seq) is int:
        return (host, seq) if 0 < seq <= MAX_SEQ else None
    return None


def _event(index: int, raw: Any, coverage: TokenCoverage, latest: datetime) -> dict[str, Any]:
    def fault(message: str) -> BatchError:
        return BatchError(f"events[{index}]: {message}", _named(raw), message)

    if not isinstance(raw, dict):
        raise fault("not an object")
    missing = [f for f in REQUIRED if f not in raw]
    unknown = set(raw) - {*FIELDS, "command", "time", "seq"}
    if missing or unknown:
        raise fault(f"missing {missing} / unknown {sorted(unknown)} fields")
    event: dict[str, Any] = {}
    for field, limit in FIELDS.items():
        value = raw.get(field, "")
        if not isinstance(value, str) or len(value) > limit or "\x00" in value:
            raise fault(f"{field} must be text of at most {limit} characters")
        event[field] = value
    command = raw["command"]
    if not isinstance(command, str) or not command or len(command) > MAX_COMMAND:
        raise fault(f"command must be text of 1 to {MAX_COMMAND} characters")
    if "\x00" in command:
        raise fault("command contains NUL")
    event["command"] = command
    if not event["host"] or not event["user"]:
        raise fault("host and user must not be empty")
    if event["host"] not in coverage.hosts:
        raise fault(f"host {event['host']!r} is not covered by this token")
    seq = raw["seq"]
    if type(seq) is not int or not 0 < seq <= MAX_SEQ:
        raise fault("seq must be a positive integer")
    event["seq"] = seq
    try:
        when = datetime.fromisoformat(raw["time"]) if isinstance(raw["time"], str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise fault("time must be ISO 8601 with a UTC offset")
    if not OLDEST <= when <= latest:
        raise fault("time is out of range")
    event["event_time"] = when.astimezone(UTC)
    return event


def store(events: list[dict[str, Any]]) -> Stored:
    """Insert the events not stored yet, linking each into its host's chain.

    The hosts' chain heads are locked first, so a concurrent batch for the same
    host waits: the duplicate check and the links cannot race.
    """
    by_host: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for event in events:
        by_host[event["host"]].setdefault(event["seq"], event)  # first copy of a repeated seq
    ensure_heads(host_scope(h) for h in by_host)
    with transaction.atomic():
        stored = _store(by_host, len(events))
    rejections.resolve({host: list(batch) for host, batch in by_host.items()})
    return stored


def _store(by_host: dict[str, dict[int, dict[str, Any]]], received: int) -> Stored:
    heads = locked_heads(host_scope(h) for h in by_host)
    ring = keyring()
    rows: list[CommandEvent] = []
    for host, batch in by_host.items():
        known = set(
            CommandEvent.objects.filter(host=host, seq__in=list(batch)).values_list(
                "seq", flat=True
            )
        )

        head = heads[host_scope(host)]
        pos, last = head.length, head.last_hash
        for seq in sorted(batch.keys() - known):
            event = batch[seq]
            pos += 1
            event["chain_pos"] = pos
            key, digest = sign(ring, last, event_content(event))
            rows.append(CommandEvent(**event, prev_hash=last, chain_hash=digest, chain_key=key))
            last = digest
        if pos != head.length:
            ChainHead.objects.filter(pk=head.pk).update(length=pos, last_hash=last)
    CommandEvent.objects.bulk_create(rows, batch_size=1000)
    return Stored(received=received, stored=len(rows))
