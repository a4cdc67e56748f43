"""In-memory stand-ins for what the engine is handed: a registry, a recorder, an executor.

They let the engine's unit tests drive the real queue, workers, rollout, cancel and
timeout logic without a database, a daemon process or a backend.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from omserver.jobs.events import Event, HostDone, StepStarted
from omserver.modules.metadata import LoadedModule
from omserver.modules.registry import NoSuchModule
from omserver.sdk import HostResult, Target
from omserver.vocabulary import ACTIVE_STATUSES, HostStatus, JobStatus

TAG = [  # "tag" names a job in the executor's log
    {"name": "tag", "type": "str", "default": ""},
    {"name": "secret", "type": "str", "default": "", "sensitive": True},
]


def module(module_id: int, *, exclusive: bool = False) -> LoadedModule:
    return LoadedModule(
        module_id,
        f"module {module_id}",
        "",
        TAG,
        ("ansible",),
        exclusive,
        {},
        Path(f"Mid_{module_id}.py"),
        legacy=False,
    )


class FakeRegistry:
    def __init__(self, *modules: LoadedModule) -> None:
        self.modules = {m.id: m for m in modules}

    def get(self, module_id: int) -> LoadedModule:
        try:
            return self.modules[module_id]
        except KeyError:
            raise NoSuchModule(f"no module {module_id}") from None

    def reports(self) -> tuple[int, list[dict[str, Any]]]:
        return 0, [{"id": m.id, "sha256": "", "error": ""} for m in self.modules.values()]


@dataclass
class RecordedJob:
    status: str
    targets: list[str]
    fields: dict[str, Any]
    error: str = ""
    rollout_stop: str = ""
    hosts: dict[str, dict[str, str]] = field(default_factory=dict)  # host -> status, error
    steps: dict[tuple[str, int], HostResult] = field(default_factory=dict)
    output: list[tuple[str, int, str, str]] = field(default_factory=list)


class MemoryRecorder:
    """The ``Recorder`` protocol over dicts; drops writes to a closed job, as the real one."""

    def __init__(self, inventory: Iterable[str] = ()) -> None:
        self.inventory = {name: {"hostname": name, "lan_ip": "127.0.0.1"} for name in inventory}
        self.jobs: dict[int, RecordedJob] = {}
        self.reported: list[dict[str, Any]] = []
        self.disabled: set[int] = set()  # modules an operator has not enabled
        self.replayed: set[str] = set()
        self.claims: dict[int, dict[str, Any]] = {}  # job -> instance, locks, cancel
        self._lock = threading.Lock()

    def inventory_targets(self, hostnames: list[str]) -> dict[str, dict[str, Any]]:
        return {name: self.inventory[name] for name in hostnames if name in self.inventory}

    def report_modules(self, modules: list[dict[str, Any]]) -> None:
        self.reported = modules

    def module_enabled(self, module_id: int, schema: list) -> bool:
        return module_id not in self.disabled

    def create_job(self, *, targets: list[str], **fields: Any) -> int:
        with self._lock:
            job_id = len(self.jobs) + 1
            self.jobs[job_id] = RecordedJob(JobStatus.QUEUED, targets, fields)
            return job_id

    def job_for_request(self, client: str, request: str) -> int | None:
        with self._lock:
            mine = [n for n, job in self.jobs.items() if job.fields.get("client") == client]
            return next((n for n in mine if self.jobs[n].fields.get("request") == request), None)

    def replay(self, writes: list[tuple[str, str, tuple[Any, ...]]]) -> None:
        """All or nothing, as the real one's transaction (one flusher: no race to guard)."""
        for key, name, args in writes:
            if key not in self.replayed:
                getattr(self, name)(*args)
        self.replayed.update(key for key, _, _ in writes)

    def check(self) -> None:
        """Always reachable: it is memory."""

    def claim_part(
        self, job_id: int, module_id: int, hosts: list[str], daemon: str, order: str
    ) -> None:
        return None  # web jobs across zones are the real recorder's business

    def queued(
        self, daemon: str, exclude: list[int], limit: int, job_id: int | None = None
    ) -> list[tuple[int, int | None, str]]:
        with self._lock:
            waiting = [
                (n, None, job.fields["order"])
                for n, job in sorted(self.jobs.items())
                if job.status == JobStatus.QUEUED and n not in exclude and job_id in (None, n)
            ]
            return waiting[:limit]

    def claimed(self, instance: str) -> list[tuple[int, int | None, str]]:
        with self._lock:
            return [
                (n, None, self.jobs[n].fields["order"])
                for n, claim in sorted(self.claims.items())
                if claim["instance"] == instance
            ]

    def claim(
        self, job_id: int, part_id: int | None, daemon: str, instance: str, locks: list
    ) -> str:
        with self._lock:
            if self.jobs[job_id].status != JobStatus.QUEUED:
                return "taken"
            held = {tuple(lock) for claim in self.claims.values() for lock in claim["locks"]}
            if held & {tuple(lock) for lock in locks}:
                return "busy"
            self.claims[job_id] = {"instance": instance, "locks": locks, "cancel": False}
            self.jobs[job_id].status = JobStatus.RUNNING
            return "ok"

    def ask_cancel(self, job_id: int) -> bool:
        with self._lock:
            if job_id in self.claims:
                self.claims[job_id]["cancel"] = True
            return job_id in self.claims

    def cancels(self, instance: str) -> list[int]:
        with self._lock:
            return [n for n, c in self.claims.items() if c["instance"] == instance and c["cancel"]]

    def recorded_output(self, job_id: int) -> dict[str, list]:
        return {"ended": [], "printed": []}  # the scripted executor journals nothing

    def _active(self, job_id: int) -> RecordedJob | None:
        job = self.jobs[job_id]
        return job if job.status in ACTIVE_STATUSES else None

    def start_step(
        self, job_id: int, step: int, action: str, hosts: list[str], started: float
    ) -> None:
        with self._lock:
            if job := self._active(job_id):
                for host in hosts:
                    job.hosts.setdefault(host, {"status": HostStatus.RUNNING, "error": ""})
                    job.steps[host, step] = HostResult(host, HostStatus.RUNNING, step=step)

    def save_output(self, job_id: int, chunks: list[tuple[str, int, str, str]]) -> None:
        with self._lock:
            if job := self._active(job_id):
                job.output += chunks

    def save_step(self, job_id: int, result: HostResult) -> None:
        with self._lock:
            if job := self._active(job_id):
                job.steps[result.host, result.step] = result

    def cut_step(self, job_id: int, host: str, step: int, status: str, note: str) -> None:
        with self._lock:
            if job := self._active(job_id):
                printed = "".join(t for h, n, _, t in job.output if (h, n) == (host, step))
                job.steps[host, step] = HostResult(host, status, stdout=printed, stderr=note)

    def finish_hosts(self, job_id: int, ends: list[tuple[str, str, str]]) -> None:
        with self._lock:
            if job := self._active(job_id):
                for host, status, error in ends:
                    job.hosts[host] = {"status": status, "error": error}

    def finish_job(self, job_id: int, status: str, error: str = "", rollout_stop: str = "") -> None:
        with self._lock:
            job = self.jobs[job_id]
            if job.status in ACTIVE_STATUSES:
                job.status, job.error, job.rollout_stop = status, error, rollout_stop
                self.claims.pop(job_id, None)

    def finish_part(self, part_id: int, status: str, error: str = "", stop: str = "") -> None:
        raise AssertionError("no parts in the engine's unit tests")

    def interrupt_unfinished(
        self, daemon: str, instance: str, reason: str, keep: Iterable[int] = ()
    ) -> int:
        with self._lock:
            mine = {n for n, c in self.claims.items() if c["instance"] == instance} - set(keep)
            for job_id in mine:
                self.jobs[job_id].status, self.jobs[job_id].error = JobStatus.INTERRUPTED, reason
                del self.claims[job_id]
            return len(mine)

    def fail_undelivered_parts(self, older_than: timedelta, reason: str) -> int:
        return 0

    def job_state(self, job_id: int, after: int = 0) -> dict[str, Any] | None:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                return None
            return {
                "id": job_id,
                "status": job.status,
                "error": job.error,
                "rollout_stop": job.rollout_stop,
                "results": [{"host": h, **row} for h, row in job.hosts.items()],
                "steps": [vars(r).copy() for r in job.steps.values()],
            }


class ScriptedExecutor:
    """Stands in for ``execution.execute``: each host ends as ``outcomes`` says (ok when
    not named). A job whose ``tag`` parameter has a gate runs until the test opens
    the gate; cancel and the job's timeout end it early, with the results the real
    executor gives then. ``log`` holds ("start"|"end", tag, hosts) in order."""

    def __init__(self, outcomes: dict[str, str] | None = None) -> None:
        self.outcomes = outcomes or {}
        self.gates: dict[str, threading.Event] = {}
        self.running: dict[str, threading.Event] = {}
        self.log: list[tuple[str, str, tuple[str, ...]]] = []
        self.params: dict[str, dict[str, Any]] = {}  # tag -> the parameters it ran with
        self._lock = threading.Lock()

    def hold(self, tag: str) -> threading.Event:
        """A gate for the job tagged ``tag``; set it to let the job end."""
        self.running[tag] = threading.Event()
        self.gates[tag] = threading.Event()
        return self.gates[tag]

    def started(self, tag: str) -> list[tuple[str, ...]]:
        return [hosts for event, name, hosts in self.log if (event, name) == ("start", tag)]

    def __call__(
        self,
        module: LoadedModule,
        targets: Sequence[Target],
        params: dict[str, Any],
        *,
        config: Any,
        timeout: float,
        cancel: threading.Event,
        journal_to: Any = None,
        detach: threading.Event | None = None,
    ) -> Iterator[Event]:
        tag, hosts = params["tag"], tuple(t.hostname for t in targets)
        with self._lock:
            self.log.append(("start", tag, hosts))
            self.params[tag] = dict(params)
        if tag == "crash":
            raise RuntimeError("the executor broke")
        if tag == "exit":
            raise SystemExit("the executor left")
        ended = True
        yield StepStarted(1, "scripted", hosts, time.time())
        if tag in self.gates:
            self.running[tag].set()
            ended = _first_of(self.gates[tag], cancel, detach, timeout=timeout)
        if detach is not None and detach.is_set():
            return  # as the real one: the events stop, the process goes on
        for host in hosts:
            if cancel.is_set():
                yield HostDone(host, HostStatus.CANCELLED, "cancelled")
            elif not ended:
                yield HostDone(host, HostStatus.TIMEOUT, "stopped at the job's timeout")
            else:
                status = self.outcomes.get(host, "ok")
                yield HostResult(host, status, 0 if status == "ok" else 1, step=1)
                yield HostDone(host, status)
        with self._lock:
            self.log.append(("end", tag, hosts))


def _first_of(*events: threading.Event | None, timeout: float) -> bool:
    """Wait until one of ``events`` is set (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    gate = events[0]
    while not any(event.is_set() for event in events if event is not None):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        gate.wait(min(0.01, left))
    return True
