"""Runs one module for one job in its own process and streams what it does.

A module is Python someone dropped in a folder: it may hang, crash or leak.
So each job runs in a process of its own, forked from the forkserver of
:mod:`omserver.forkserver` (the multi-threaded daemon is never forked itself).
A couple of these processes are started ahead of need, each with its backend
already made, so a job does not wait for Salt's or Ansible's set-up; a process
whose job ended cleanly goes back to the pool for the next one (up to
``JOBS_PER_PROCESS``), one that was killed or whose module raised is replaced.
See :mod:`omserver.jobs.process` for the inside.

What it yields (see :mod:`omserver.jobs.events`), in the order it happened:

* ``StepStarted`` as the module starts a step, ``Output`` while steps print,
  and each host's ``HostResult`` for the step when that host finishes it;
* ``HostDone`` once per target: when a step did not end ``ok`` (that host is
  left out of later steps), or when the module returns (``ok``; ``failed``
  for a host it never touched);
* at the timeout, on cancel, or if the module raises or its process dies, the
  process is killed, each step still running is ``StepCut`` (its printed
  output stays), and every host not yet done ends ``timeout``,
  ``cancelled`` or ``failed`` with the error.
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from omserver import forkserver
from omserver.config import Config
from omserver.jobs import process as job_process
from omserver.jobs.events import Event, HostDone, Output, StepCut, StepStarted
from omserver.modules.metadata import LoadedModule
from omserver.sdk import HostResult, Target, sensitive_values
from omserver.vocabulary import HostStatus

__all__ = ["execute", "warm_up"]

SPARES = 2  # job processes kept ready for the configuration in use
JOBS_PER_PROCESS = 100  # then a fresh process, so that no leak can build up
SPARE_MAX_AGE = 600.0  # seconds; an older spare is replaced rather than trusted
KILL_GRACE = 2.0  # seconds between SIGTERM (lets Ansible stop its workers) and SIGKILL
POLL = 0.1  # how often a waiting job looks at its cancel flag


@dataclass(eq=False)
class _JobProcess:
    process: BaseProcess
    conn: Connection  # the job goes down, messages come up
    started: float = field(default_factory=time.monotonic)
    jobs: int = 0


class _Spares:
    """Job processes started ahead for the latest configuration (the daemon has one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key = b""
        self._ready: list[_JobProcess] = []

    def take(self, config: Config) -> _JobProcess:
        key = pickle.dumps(config)
        with self._lock:
            if key != self._key:
                self._discard_all()
                self._key = key
            while self._ready:
                spare = self._ready.pop(0)
                if spare.process.is_alive() and time.monotonic() - spare.started < SPARE_MAX_AGE:
                    return spare
                _discard(spare)
        return _start(config)

    def give_back(self, config: Config, worker: _JobProcess) -> bool:
        """Keep a process whose job ended cleanly for the next job; False if not kept."""
        key = pickle.dumps(config)
        with self._lock:
            if key == self._key and len(self._ready) < SPARES and (worker.jobs < JOBS_PER_PROCESS):
                self._ready.append(worker)
                return True
        return False

    def low(self) -> bool:
        with self._lock:
            return not self._ready

    def refill(self, config: Config) -> None:
        key = pickle.dumps(config)
        with self._lock:
            missing = SPARES - len(self._ready) if key == self._key else 0
        started = [_start(config) for _ in range(missing)]  # a few ms each: not under the lock
        with self._lock:
            if key == self._key:
                self._ready.extend(started)
                started = []
        for spare in started:  # the configuration changed meanwhile
            _discard(spare)

    def close(self) -> None:
        with self._lock:
            self._discard_all()

    def _discard_all(self) -> None:
        for spare in self._ready:
            _discard(spare)
        self._ready = []


_spares = _Spares()
atexit.register(_spares.close)


def _start(config: Config) -> _JobProcess:
    context = forkserver.context()
    ours, theirs = context.Pipe(duplex=True)
    process = context.Process(target=job_process.main, args=(theirs, config), daemon=False)
    process.start()
    theirs.close()
    return _JobProcess(process, ours)


def _discard(spare: _JobProcess) -> None:
    spare.conn.close()  # an idle spare exits when its pipe closes


def warm_up(config: Config | None = None) -> None:
    """Start the forkserver (and spares for ``config``) now, not at the first job."""
    forkserver.ensure_running()
    if config is not None:
        _spares.take(config).conn.close()  # adopts config; the taken spare is not needed
        _spares.refill(config)


def execute(
    module: LoadedModule,
    targets: Sequence[Target],
    params: Mapping[str, Any],
    *,
    config: Config,
    timeout: float,
    cancel: threading.Event | None = None,
) -> Iterator[Event]:
    """Run ``module`` on ``targets`` with validated ``params``; yield what happens as it does.

    Closing the iterator early kills the job's process as well.
    """
    started = time.monotonic()
    job = job_process.JobOrder(
        str(module.path),
        module.id,
        [t.to_dict() for t in targets],
        dict(params),
        timeout,
        sensitive_values(module.params, params),
    )
    worker = _spares.take(config)
    try:
        worker.conn.send(job)
    except OSError:  # the spare died while it waited
        _discard(worker)
        worker = _start(config)
        worker.conn.send(job)
    worker.jobs += 1
    if _spares.low():  # jobs run side by side: have the next process ready
        threading.Thread(target=_spares.refill, args=(config,), daemon=True).start()
    hosts = _Hosts([t.hostname for t in targets])
    ending: tuple[str, str] | None = None  # (status, message) for hosts left open
    clean = False  # the process said "done" (not: killed, died, or the caller stopped early)
    try:
        for event in _stream(worker, started + timeout, cancel):
            if isinstance(event, tuple):
                ending = event
                break
            yield event
            yield from hosts.follow(event)
        clean = ending is None
    finally:
        if not clean:
            worker.conn.close()
            _stop(worker.process, clean=False)
        elif not _spares.give_back(config, worker):  # "done", but not needed again
            worker.conn.close()  # it exits when its pipe closes
            threading.Thread(target=_stop, args=(worker.process,), daemon=True).start()
    if ending == (HostStatus.TIMEOUT, ""):
        ending = (HostStatus.TIMEOUT, f"stopped at the job's {timeout:g} s timeout")
    yield from hosts.close(ending)


class _Hosts:
    """Where each host of the job stands: which step runs there, whether it is done."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.running: dict[str, int] = {}  # host -> the step running there
        self.touched: set[str] = set()
        self.done: set[str] = set()

    def follow(self, event: Event) -> Iterator[HostDone]:
        if isinstance(event, StepStarted):
            for host in event.hosts:
                self.running[host] = event.step
                self.touched.add(host)
        elif isinstance(event, HostResult):
            self.running.pop(event.host, None)
            self.touched.add(event.host)
            if not event.ok and event.host not in self.done:
                self.done.add(event.host)
                yield HostDone(event.host, event.status)

    def close(self, ending: tuple[str, str] | None) -> Iterator[StepCut | HostDone]:
        """The job's process is gone: every host not done yet ends, by how it ended."""
        if ending is None:
            for host in self.names:
                if host in self.done:
                    continue
                if host in self.touched:
                    yield HostDone(host, HostStatus.OK)
                else:
                    yield HostDone(host, HostStatus.FAILED, "the module ran no step on this host")
            return
        status, message = ending
        for host, step in self.running.items():
            yield StepCut(host, step, status, message)
        for host in self.names:
            if host not in self.done:
                yield HostDone(host, status, message)


def _stream(
    worker: _JobProcess, deadline: float, cancel: threading.Event | None
) -> Iterator[Event | tuple[str, str]]:
    """The job's events, then ``(status, message)`` if it ended badly (nothing if not)."""
    while True:
        if cancel is not None and cancel.is_set():
            yield (HostStatus.CANCELLED, "cancelled")
            return
        left = deadline - time.monotonic()
        if left <= 0:
            yield (HostStatus.TIMEOUT, "")
            return
        if not worker.conn.poll(min(left, POLL)):
            continue
        try:
            kind, payload = worker.conn.recv()
        except EOFError:
            worker.process.join(1)
            exit_code = worker.process.exitcode
            yield (HostStatus.FAILED, f"the module's process died (exit code {exit_code})")
            return
        if kind == "output":
            yield Output(tuple(payload))
        elif kind == "step":
            step, action, hosts, started = payload
            yield StepStarted(step, action, tuple(hosts), started)
        elif kind == "result":
            yield HostResult.from_dict(payload)
        elif kind == "log":
            logging.getLogger(payload[0]).log(payload[1], "%s", payload[2])
        elif kind == "error":
            yield (HostStatus.FAILED, payload)
            return
        else:  # "done"
            return


def _stop(process: BaseProcess, *, clean: bool = True) -> None:
    """Reap a job process that finished; kill one that did not, with all it started."""
    if clean:
        process.join(5)
        if process.exitcode is not None:
            return
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)  # it leads its own session: see omserver.jobs.process.main
        except ProcessLookupError:
            if process.exitcode is None:
                process.kill()
        process.join(wait)
        if process.exitcode is not None:
            break
    try:  # leftovers in the group (ssh, a module's own subprocesses)
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
