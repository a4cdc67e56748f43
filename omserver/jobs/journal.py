"""A job's journal: what its process did, on disk, so that a restarted daemon can adopt it.

A job process sends its messages to the daemon over a pipe; it also appends
each one (except log records) to the job's journal in the daemon's data folder,
one JSON line each, before it sends it. A daemon killed mid-job thus loses
nothing: the process runs on to its end (writing only to the journal once the
pipe is gone), and the daemon, started again, reads the journal from the top,
follows it while the process still runs, and records what it did. Each of the
job's runs (one per rollout batch) starts with a ``batch`` line naming its
process, so that the reader can tell a live process from a dead one (or from a
new process that got the same pid).

Writes are not fsync'd: they outlive the daemon's process, not the machine.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JOURNALS = "journals"  # the folder under the daemon's data folder
BATCH, DONE, ERROR = "batch", "done", "error"


def journal_path(data_dir: Path, job_id: int) -> Path:
    return data_dir / JOURNALS / f"{job_id}.jsonl"


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), or None if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def alive(header: dict[str, Any]) -> bool:
    """Whether the process a ``batch`` line names still runs (and is that process)."""
    start = process_start(header["pid"])
    return start is not None and start == header["start"]


class Writer:
    """The job process's side: append messages, one line each."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def begin(self, hosts: list[str], deadline: float) -> None:
        """A new run of the job (``deadline``: epoch seconds)."""
        pid = os.getpid()
        header = {"pid": pid, "start": process_start(pid), "hosts": hosts, "deadline": deadline}
        self.write(BATCH, header)

    def write(self, kind: str, payload: Any) -> None:
        os.write(self._fd, json.dumps([kind, payload]).encode() + b"\n")

    def close(self) -> None:
        os.close(self._fd)


@dataclass
class Batch:
    """One run of the job as its journal tells it: its ``batch`` line, then its messages."""

    header: dict[str, Any]
    messages: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        return bool(self.messages) and self.messages[-1][0] in (DONE, ERROR)


class Reader:
    """The daemon's side: the batches so far, and what is appended while it follows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def batches(self) -> list[Batch]:
        batches: list[Batch] = []
        for kind, payload in self.more():
            if kind == BATCH:
                batches.append(Batch(payload))
            elif batches:
                batches[-1].messages.append((kind, payload))
        return batches

    def more(self) -> list[tuple[str, Any]]:
        """The whole lines appended since the last call (a line still being written waits)."""
        try:
            with self.path.open("rb") as file:
                file.seek(self._offset)
                data = file.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        return [tuple(json.loads(line)) for line in lines if line]
