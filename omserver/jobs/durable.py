"""The engine's writes survive a database outage and a daemon crash: they cost only delay.

Every write about a job (it started, a step started, output, a step's result,
a host's or the job's end) goes to the record at once when it can. When it
cannot (the database is down, restarting, or answers an error), that write and
every later one are kept in order, in memory and appended to a spool file in the
daemon's data folder (fsync'd), and a flusher thread replays them as soon as the
record answers again. Replayed writes go through ``Recorder.replay`` with their
keys, in one transaction with a note of each key, so a replay after a crash (of
writes that had gone through, but were still in the spool) writes nothing twice.

Reads (and the writes whose answer the caller needs, such as a new job's id)
pass straight through; when the record cannot answer them the client is told
so, as ``unavailable``, not as an internal error.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from omserver.jobs.recorder import Recorder
from omserver.protocol.operations import OperationError
from omserver.sdk import HostResult

log = logging.getLogger("omserver.jobs.durable")

RETRY_FIRST = 0.2  # seconds before the first replay attempt after a failure
RETRY_MAX = 1.0  # the back-off's ceiling: a database that is back is found within this
CHECK_TTL = 1.0  # seconds a database check stays good (ping asks often)
REPLAY_BATCH = 100  # kept writes replayed in one transaction
GIVE_UP_AFTER = 5  # replays a reachable record refused before the write is set aside
SPOOL_FILE = "records.jsonl"
REJECTED_FILE = "rejected.jsonl"


class RecordUnavailable(OperationError):  # noqa: N818 (names say what happened)
    """The record cannot be read (or a write whose answer is needed made) right now."""

    def __init__(self, exc: Exception) -> None:
        super().__init__(
            "unavailable", f"the job record (database) cannot be reached: {_describe(exc)}"
        )


@dataclass(frozen=True)
class _Write:
    key: str  # unique across daemon runs: the replay's idempotency key
    name: str  # the Recorder method
    args: tuple[Any, ...]


class _Spool:
    """An append-only file of the writes not yet known to be in the record."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.rejected = path.with_name(REJECTED_FILE)

    def load(self) -> list[_Write]:
        """What a previous run left; a line torn by a crash mid-append is skipped."""
        if not self.path.exists():
            return []
        writes = []
        for line in self.path.read_text().splitlines():
            try:
                raw = json.loads(line)
                writes.append(_Write(raw["key"], raw["name"], tuple(map(_decode, raw["args"]))))
            except (ValueError, KeyError, TypeError):
                log.warning("skipped a torn line in %s", self.path)
        return writes

    def append(self, write: _Write) -> None:
        _append(self.path, write)

    def reject(self, write: _Write) -> None:
        _append(self.rejected, write)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def _append(path: Path, write: _Write) -> None:
    line = json.dumps(
        {"key": write.key, "name": write.name, "args": [_encode(a) for a in write.args]}
    )
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def _encode(arg: Any) -> Any:
    return {"host_result": arg.to_dict()} if isinstance(arg, HostResult) else arg


def _decode(arg: Any) -> Any:
    if isinstance(arg, dict) and set(arg) == {"host_result"}:
        return HostResult.from_dict(arg["host_result"])
    return arg


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


class DurableRecorder:
    """A :class:`~omserver.jobs.recorder.Recorder` that never loses a write (see above)."""

    def __init__(self, recorder: Recorder, spool_dir: Path) -> None:
        self._recorder = recorder
        self._spool = _Spool(spool_dir / SPOOL_FILE)
        self._pending: deque[_Write] = deque(self._spool.load())
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._run = uuid.uuid4().hex[:16]
        self._count = 0
        self._error = ""  # why the record last failed, while writes wait
        self._checked = (float("-inf"), "")  # (monotonic time, error or "") of the last check
        if self._pending:
            log.warning("%d write(s) left in the spool: replaying them", len(self._pending))
        threading.Thread(target=self._flush_forever, name="record-flusher", daemon=True).start()

    # -- health ----------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``database`` ok/unreachable (with ``database_error``) and ``spooled`` writes."""
        with self._lock:
            spooled, error = len(self._pending), self._error
        if not spooled:
            error = self._check()
        return {
            "database": "unreachable" if error else "ok",
            "database_error": error,
            "spooled": spooled,
        }

    def _check(self, *, fresh: bool = False) -> str:
        """Why the record cannot be reached now, or "" (cached for ``CHECK_TTL``)."""
        at, error = self._checked
        if fresh or time.monotonic() - at >= CHECK_TTL:
            try:
                self._recorder.check()
                error = ""
            except Exception as exc:
                error = _describe(exc)
            self._checked = (time.monotonic(), error)
        return error

    def drain(self, timeout: float) -> bool:
        """Wait until every kept write is in the record; False if some still wait."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._pending and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            return not self._pending

    # -- writes, kept when the record cannot take them ---------------------------------

    def start_step(
        self, job_id: int, step: int, action: str, hosts: list[str], started: float
    ) -> None:
        self._write("start_step", job_id, step, action, hosts, started)

    def save_output(self, job_id: int, chunks: list[tuple[str, int, str, str]]) -> None:
        self._write("save_output", job_id, chunks)

    def save_step(self, job_id: int, result: HostResult) -> None:
        self._write("save_step", job_id, result)

    def cut_step(self, job_id: int, host: str, step: int, status: str, note: str) -> None:
        self._write("cut_step", job_id, host, step, status, note)

    def finish_hosts(self, job_id: int, ends: list[tuple[str, str, str]]) -> None:
        self._write("finish_hosts", job_id, ends)

    def finish_job(self, job_id: int, status: str, error: str = "", rollout_stop: str = "") -> None:
        self._write("finish_job", job_id, status, error, rollout_stop)

    def finish_part(
        self, part_id: int, status: str, error: str = "", rollout_stop: str = ""
    ) -> None:
        self._write("finish_part", part_id, status, error, rollout_stop)

    def _write(self, name: str, *args: Any) -> None:
        with self._lock:
            self._count += 1
            write = _Write(f"{self._run}-{self._count}", name, args)
            direct = not self._pending
        if direct:  # the usual case: straight to the record, no spool, no lock held
            try:
                getattr(self._recorder, name)(*args)
                return
            except Exception as exc:
                log.warning("the record refused a write (%s); keeping it", _describe(exc))
                self._error = _describe(exc)
        with self._changed:
            self._spool.append(write)
            self._pending.append(write)
            self._changed.notify_all()

    def _flush_forever(self) -> None:
        delay, refusals = RETRY_FIRST, 0
        while True:
            with self._changed:
                while not self._pending:
                    self._changed.wait()
                # One transaction for many: unless the record refused the last try while
                # it answered; then one at a time, to find the write it refuses.
                batch = list(itertools.islice(self._pending, 1 if refusals else REPLAY_BATCH))
            try:
                self._recorder.replay([(w.key, w.name, w.args) for w in batch])
            except Exception as exc:
                self._error = _describe(exc)
                # A record that answers, yet refuses a write again and again, would hold
                # back every later one: set it aside where an operator finds it.
                refusals = refusals + 1 if not self._check(fresh=True) else 0
                if refusals < GIVE_UP_AFTER or len(batch) > 1:
                    time.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX)
                    continue
                log.error("set aside %s in %s: %s", batch[0].name, self._spool.rejected, exc)
                self._spool.reject(batch[0])
            delay, refusals = RETRY_FIRST, 0
            with self._changed:
                for _ in batch:
                    self._pending.popleft()
                if not self._pending:
                    self._spool.clear()
                    self._error = ""
                    log.info("every kept write is in the record now")
                self._changed.notify_all()

    # -- reads: through, or a clear "unavailable" ------------------------------------------

    def _read(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except OperationError:
            raise
        except Exception as exc:
            raise RecordUnavailable(exc) from exc

    def inventory_targets(self, hostnames: list[str]) -> dict[str, dict[str, Any]]:
        return self._read(lambda: self._recorder.inventory_targets(hostnames))

    def report_modules(self, modules: list[dict[str, Any]]) -> None:
        self._read(lambda: self._recorder.report_modules(modules))

    def module_enabled(self, module_id: int, schema: list) -> bool:
        return self._read(lambda: self._recorder.module_enabled(module_id, schema))

    def job_for_request(self, client: str, request: str) -> int | None:
        return self._read(lambda: self._recorder.job_for_request(client, request))

    def create_job(self, **fields: Any) -> int:
        return self._read(lambda: self._recorder.create_job(**fields))

    def claim_part(
        self, job_id: int, module_id: int, hosts: list[str], daemon: str, order: str
    ) -> int | None:
        return self._read(
            lambda: self._recorder.claim_part(job_id, module_id, hosts, daemon, order)
        )

    def queued(
        self, daemon: str, exclude: list[int], limit: int, job_id: int | None = None
    ) -> list[tuple[int, int | None, str]]:
        return self._read(lambda: self._recorder.queued(daemon, exclude, limit, job_id))

    def claimed(self, instance: str) -> list[tuple[int, int | None, str]]:
        return self._read(lambda: self._recorder.claimed(instance))

    def claim(
        self, job_id: int, part_id: int | None, daemon: str, instance: str, locks: list
    ) -> str:
        return self._read(lambda: self._recorder.claim(job_id, part_id, daemon, instance, locks))

    def ask_cancel(self, job_id: int) -> bool:
        return self._read(lambda: self._recorder.ask_cancel(job_id))

    def cancels(self, instance: str) -> list[int]:
        return self._read(lambda: self._recorder.cancels(instance))

    def recorded_output(self, job_id: int) -> dict[str, list]:
        return self._read(lambda: self._recorder.recorded_output(job_id))

    def interrupt_unfinished(
        self, daemon: str, instance: str, reason: str, keep: Iterable[int] = ()
    ) -> int:
        return self._read(
            lambda: self._recorder.interrupt_unfinished(daemon, instance, reason, keep)
        )

    def fail_undelivered_parts(self, older_than: timedelta, reason: str) -> int:
        return self._read(lambda: self._recorder.fail_undelivered_parts(older_than, reason))

    def job_state(self, job_id: int, after: int = 0) -> dict[str, Any] | None:
        return self._read(lambda: self._recorder.job_state(job_id, after))
