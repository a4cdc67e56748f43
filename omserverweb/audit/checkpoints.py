"""Chain heads saved outside the database, to catch links cut off a chain's end.

Keys stop a database writer from forging links, not from deleting a chain's
last links and moving its head back to the last one kept (or deleting a whole
chain): what is left still verifies. ``audit_verify --checkpoint`` compares the
chains with the heads it saved last time (every kept chain at least as long, its
link at the saved position unchanged) and, when all is well, saves the current
heads. Run it from cron; keep the file where the database's writers cannot write.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from omserver.files import write_private
from omserverweb.audit.chain import JOBS_SCOPE, Problem
from omserverweb.audit.models import ChainHead, CommandEvent
from omserverweb.jobs.models import Job


def checkpoint_file() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_FILE)


def heads() -> dict[str, tuple[int, str]]:
    """Each chain's length and last hash, as the database has them now."""
    rows = ChainHead.objects.filter(length__gt=0).values_list("scope", "length", "last_hash")
    return {scope: (length, last) for scope, length, last in rows}


def load(path: Path) -> dict[str, tuple[int, str]]:
    """The heads saved at ``path`` (none when there is no file yet)."""
    if not path.exists():
        return {}
    chains = json.loads(path.read_text())["chains"]
    return {scope: (int(length), str(last)) for scope, (length, last) in chains.items()}


def save(path: Path, saved: dict[str, tuple[int, str]]) -> None:
    data = {"saved_at": datetime.now(UTC).isoformat(timespec="seconds"), "chains": saved}
    write_private(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def _hash_at(scope: str, pos: int) -> str | None:
    if scope == JOBS_SCOPE:
        links = Job.objects.filter(chain_pos=pos)
    else:
        links = CommandEvent.objects.filter(host=scope.removeprefix("host:"), chain_pos=pos)
    return links.values_list("chain_hash", flat=True).first()


def compare(saved: dict[str, tuple[int, str]]) -> list[Problem]:
    """Where the chains now fall short of the saved heads."""
    now = {h.scope: h for h in ChainHead.objects.filter(scope__in=list(saved))}
    problems = []
    for scope, (length, last) in sorted(saved.items()):
        head = now.get(scope)
        if head is None or head.length < length:
            reason = f"last record(s) removed: the checkpoint saw {length} link(s)"
            problems.append(Problem(scope, None, head.length + 1 if head else 1, reason))
        elif length >= head.anchor_pos and _hash_at(scope, length) != last:
            reason = "record altered or removed since the checkpoint"
            problems.append(Problem(scope, None, length, reason))
        elif length == head.anchor_pos - 1 and head.anchor_hash != last:
            problems.append(Problem(scope, None, length, "pruned part differs from the checkpoint"))
    return problems
