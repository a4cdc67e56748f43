"""The daemon's job queue: first come, first served, except that an exclusive module never
runs twice on one host at once — such a job waits while later, free jobs go by."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass(eq=False)
class Ticket:
    job_id: int
    locks: frozenset[Hashable] = field(default_factory=frozenset)


class JobQueue:
    def __init__(self) -> None:
        self._queue: list[Ticket] = []
        self._held: set[Hashable] = set()
        self._closed = False
        self._changed = threading.Condition()

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, ticket: Ticket, *, first: bool = False) -> None:
        """Queue ``ticket`` last, or ``first`` (a job adopted after a restart)."""
        with self._changed:
            self._queue.insert(0 if first else len(self._queue), ticket)
            self._changed.notify_all()

    def take(self) -> Ticket | None:
        """Block until a queued job can start and claim its locks; None once closed."""
        with self._changed:
            while True:
                if self._closed:
                    return None
                for ticket in self._queue:
                    if not ticket.locks & self._held:
                        self._queue.remove(ticket)
                        self._held |= ticket.locks
                        return ticket
                self._changed.wait()

    def release(self, ticket: Ticket) -> None:
        with self._changed:
            self._held -= ticket.locks
            self._changed.notify_all()

    def discard(self, job_id: int) -> bool:
        """Drop a job that has not started; False when it already left the queue."""
        with self._changed:
            for ticket in self._queue:
                if ticket.job_id == job_id:
                    self._queue.remove(ticket)
                    return True
            return False

    def close(self) -> list[int]:
        """Stop handing out work; returns the ids of the jobs that never started."""
        with self._changed:
            self._closed = True
            left = [t.job_id for t in self._queue]
            self._queue.clear()
            self._changed.notify_all()
            return left
