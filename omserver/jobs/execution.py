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

The process also journals what it does (:mod:`omserver.jobs.journal`): a daemon
that stops mid-job detaches from it, and the next one follows it on with
:func:`resume`, which yields the same events.
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
from pathlib import Path
from typing import Any

from omserver import forkserver
from omserver.config import Config
from omserver.jobs import journal
from omserver.jobs import process as job_process
from omserver.jobs.events import Event, HostDone, Output, StepCut, StepStarted
from omserver.modules.metadata import LoadedModule
from omserver.sdk import HostResult, Target, sensitive_values
from omserver.sdk.steps import step_from_note
from omserver.vocabulary import HostStatus

__all__ = ["execute", "resume", "warm_up"]
log = logging.getLogger("omserver.jobs.execution")

SPARES = 2  # job processes kept ready for the configuration in use
JOBS_PER_PROCESS = 100  # then a fresh process, so that no leak can build up
SPARE_MAX_AGE = 600.0  # seconds; an older spare is replaced rather than trusted
KILL_GRACE = 2.0  # seconds between SIGTERM (lets Ansible stop its workers) and SIGKILL
POLL = 0.1  # how often a waiting job looks at its cancel flag
CACHE_POLL = 1.0  # seconds between reads of Salt's job cache for an adopted job's steps
DETACHED = ("detached", "")  # the daemon stops following; the process goes on
GONE = (
    HostStatus.UNKNOWN,
    "the daemon and the job's process both stopped while this ran; what happened after "
    "the last result recorded is unknown",
)


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
    journal_to: Path | None = None,
    detach: threading.Event | None = None,
) -> Iterator[Event]:
    """Run ``module`` on ``targets`` with validated ``params``; yield what happens as it does.

    With ``journal_to`` the process journals it there too (see
    :mod:`omserver.jobs.journal`). Setting ``detach`` stops the events and leaves
    the process running, for a restarted daemon to adopt (:func:`resume`);
    closing the iterator early otherwise kills the job's process as well.
    """
    started = time.monotonic()
    job = job_process.JobOrder(
        str(module.path),
        module.id,
        [t.to_dict() for t in targets],
        dict(params),
        timeout,
        sensitive_values(module.params, params),
        str(journal_to) if journal_to else None,
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
        for event in _stream(worker, started + timeout, cancel, detach):
            if isinstance(event, tuple):
                ending = event
                break
            yield event
            yield from hosts.follow(event)
        clean = ending is None
    finally:
        if ending == DETACHED:
            worker.conn.close()  # the process goes on, journaling only
        elif not clean:
            worker.conn.close()
            _stop(worker.process, clean=False)
        elif not _spares.give_back(config, worker):  # "done", but not needed again
            worker.conn.close()  # it exits when its pipe closes
            threading.Thread(target=_stop, args=(worker.process,), daemon=True).start()
    if ending == DETACHED:
        return
    if ending == (HostStatus.TIMEOUT, ""):
        ending = (HostStatus.TIMEOUT, f"stopped at the job's {timeout:g} s timeout")
    yield from hosts.close(ending)


def resume(
    batch: journal.Batch,
    reader: journal.Reader,
    *,
    config: Config,
    deadline: float,
    cancel: threading.Event | None = None,
    detach: threading.Event | None = None,
) -> Iterator[Event]:
    """What :func:`execute` yields, for a run a previous daemon started: from the run's
    journal, following it while its process lives (``deadline``: monotonic).

    If the process is gone before it ended, each host still running a step gets
    that step's result from the engine where it keeps them (Salt's job cache),
    and every host not done is ``unknown``.
    """
    hosts = _Hosts(batch.header["hosts"])
    actions: dict[int, str] = {}
    published: dict[str, tuple[str, dict[str, str]]] = {}  # host -> (jid, step note)
    ending: tuple[str, str] | None = None
    for kind, payload in _journaled(batch, reader, deadline, cancel, detach):
        if kind == "ending":
            ending = tuple(payload)
            break
        if kind == "published":
            jid, names, note = payload
            published.update((host, (jid, note)) for host in names)
            continue
        for event in _event(kind, payload):
            if isinstance(event, tuple):
                ending = event
                break
            if isinstance(event, StepStarted):
                actions[event.step] = event.action
            yield event
            yield from hosts.follow(event)
    if ending == DETACHED:
        return
    if ending == GONE:
        running = dict(hosts.running)  # follow() below takes hosts out of it
        for result in _cached_results(config, running, published, actions, deadline):
            yield result
            yield from hosts.follow(result)
    yield from hosts.close(ending)


def _journaled(
    batch: journal.Batch,
    reader: journal.Reader,
    deadline: float,
    cancel: threading.Event | None,
    detach: threading.Event | None,
) -> Iterator[tuple[str, Any]]:
    """The run's messages: those journaled already, then those its process appends,
    then ``("ending", (status, message))`` unless it ended by itself."""
    yield from batch.messages
    if batch.ended:
        return
    header = batch.header
    while True:
        if detach is not None and detach.is_set():
            yield ("ending", DETACHED)
            return
        if cancel is not None and cancel.is_set():
            _kill_group(header["pid"])
            yield ("ending", (HostStatus.CANCELLED, "cancelled"))
            return
        if time.monotonic() >= deadline:
            _kill_group(header["pid"])
            yield ("ending", (HostStatus.TIMEOUT, "stopped at the job's timeout"))
            return
        living = journal.alive(header)  # asked before reading: what it wrote is read next
        for kind, payload in reader.more():
            yield (kind, payload)
            if kind in (journal.DONE, journal.ERROR):
                return
        if not living:
            yield ("ending", GONE)
            return
        time.sleep(POLL)


def _cached_results(
    config: Config,
    running: dict[str, int],
    published: dict[str, tuple[str, dict[str, str]]],
    actions: dict[int, str],
    deadline: float,
) -> Iterator[HostResult]:
    """The results the backend's engine keeps of steps the job's process did not see end
    (Salt's job cache), as they come in until ``deadline``: the hosts may still run them."""
    if config["daemon.backend"] != "saltstack":
        return
    from omserver.backends import saltstack  # imported only when needed: Salt is heavy

    waiting = {host: published[host] for host in running if host in published}
    while waiting:
        by_jid: dict[str, list[str]] = {}
        for host, (jid, _) in waiting.items():
            by_jid.setdefault(jid, []).append(host)
        for jid, hosts in by_jid.items():
            step = step_from_note(waiting[hosts[0]][1])
            limit = config["modules.output_limit"]
            try:
                found = saltstack.cached_results(config, step, jid, hosts, limit)
            except Exception as exc:  # the master may be down too: try again
                log.warning("could not read Salt's job cache for jid %s: %s", jid, exc)
                found = {}
            for host, result in found.items():
                del waiting[host]
                result.step, result.action = running[host], actions.get(running[host], "")
                result.stderr += "\n[read from Salt's job cache after the daemon restarted]"
                yield result
        if waiting and time.monotonic() + CACHE_POLL >= deadline:
            return
        if waiting:
            time.sleep(CACHE_POLL)


def _kill_group(pid: int) -> None:
    """Stop a job process the daemon did not start itself (it leads its own group)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + KILL_GRACE
        while time.monotonic() < deadline:
            if journal.process_start(pid) is None:
                return
            time.sleep(POLL)


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
    worker: _JobProcess,
    deadline: float,
    cancel: threading.Event | None,
    detach: threading.Event | None,
) -> Iterator[Event | tuple[str, str]]:
    """The job's events, then ``(status, message)`` if it ended badly (nothing if not)."""
    while True:
        if detach is not None and detach.is_set():
            yield DETACHED
            return
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
        if kind == "log":
            logging.getLogger(payload[0]).log(payload[1], "%s", payload[2])
        elif kind != "published":  # the journal's business
            yield from _event(kind, payload)
            if kind in ("done", "error"):
                return


def _event(kind: str, payload: Any) -> Iterator[Event | tuple[str, str]]:
    """The event one message of a job process stands for (an ``error``: its ending)."""
    if kind == "output":
        yield Output(tuple(map(tuple, payload)))
    elif kind == "step":
        step, action, hosts, started = payload
        yield StepStarted(step, action, tuple(hosts), started)
    elif kind == "result":
        yield HostResult.from_dict(payload)
    elif kind == "error":
        yield (HostStatus.FAILED, payload)


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
