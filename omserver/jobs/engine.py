"""The job engine: queue, worker threads, rollout, timeouts, cancel, recording.

It is the daemon's one source of job state. Every job any client submits is
written through the :class:`~omserver.jobs.recorder.Recorder` it was handed:
each step as it starts, what it prints while it runs, each host's result of it
and each host's end, the moment they arrive. Nothing of it hangs on the daemon
or the database staying up: writes the database cannot take wait in a spool
(:mod:`omserver.jobs.durable`), a queued job's order is kept in the record
(:mod:`omserver.jobs.orders`), and a running job's process journals what it
does (:mod:`omserver.jobs.journal`), so that a restarted daemon adopts it.

The queue is the record's: a job submitted here is queued in memory too (to
start at once), but a worker runs it only once it has claimed it in the record
(``Recorder.claim``, one claim at a time per daemon name). So several daemons
sharing a ``daemon.name`` (and queue key) share one queue: each takes what the
others queued while it has workers to spare, and exclusive modules hold their
hosts across all of them.

A module runs only once an operator enabled it in the record: the engine tells
the record what its module folder holds (``Recorder.report_modules``, a new
file arriving disabled) and asks ``Recorder.module_enabled`` before it queues a
job and again before it runs one. To a client, a module that is not enabled is
one that does not exist.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from omserver.config import Config
from omserver.jobs import execution, journal, orders
from omserver.jobs.durable import DurableRecorder, RecordUnavailable
from omserver.jobs.events import Event, HostDone, Output, StepStarted
from omserver.jobs.queue import JobQueue, Ticket
from omserver.jobs.recorder import Recorder
from omserver.jobs.rollout import Rollout
from omserver.modules.metadata import LoadedModule
from omserver.modules.registry import ModuleRegistry, NoSuchModule
from omserver.protocol.operations import OperationError
from omserver.sdk import HostResult, ParamError, Target, mask_params, validate_params
from omserver.vocabulary import FINAL_STATUSES, HostStatus, JobStatus, final_status

log = logging.getLogger("omserver.jobs.engine")

KILL_WAIT = 5.0  # seconds a worker gets, at shutdown, to let go of its job
UNDELIVERED_AFTER = timedelta(minutes=5)  # a web job's part no daemon took by then: failed
SWEEP_EVERY = 60.0  # seconds between looks for such parts
START_DRAIN = 30.0  # seconds a starting daemon waits for its spool to reach the record
MAX_REQUEST_ID = 64  # characters of a client's request id
WATCH_WORKERS_EVERY = 2.0  # seconds between checks that every worker thread lives
# Seconds before its deadline a job has run out of time: a step the deadline cut short
# may end (as timeout) just before it, and a later batch started then could only time out.
DEADLINE_MARGIN = 1.0
WATCH_EVERY = 0.5  # seconds between reads of a job another daemon runs, while waiting on it
QUEUE_POLL = 1.0  # seconds between looks at the zone's queue in the record
CLAIM_AGAIN = 0.5  # seconds before a job held up by another daemon's exclusive lock retries
REPORT_MODULES_EVERY = 5.0  # seconds between looks for new, changed or removed module files
NOT_PERMITTED = "unknown or not permitted module"  # the one answer for both
# Why a host the job never reached was not run, by how the job ended.
NOT_RUN_BECAUSE = {JobStatus.CANCELLED: "cancelled", JobStatus.TIMEOUT: "the job's timeout"}


class SubmitError(OperationError):
    """A request refused before anything runs; ``code`` tells the client which error."""


@dataclass(eq=False)
class RunningJob:
    job_id: int
    module: LoadedModule
    targets: list[Target]
    params: dict[str, Any]
    timeout: float
    rollout: Rollout | None
    part_id: int | None = None  # set when it runs one zone's part of a web job
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    statuses: dict[str, str] = field(default_factory=dict)  # host -> its status, once done
    detach: threading.Event = field(default_factory=threading.Event)  # leave it to its process
    # Adopted after a restart: the runs a previous daemon started, from the job's journal.
    resumed: list[journal.Batch] = field(default_factory=list)
    reader: journal.Reader | None = None
    elsewhere: bool = False  # another daemon of the zone took it (or ended it) from the queue
    ticket: Ticket = field(init=False)  # its place in the queue

    def __post_init__(self) -> None:
        exclusive = self.module.exclusive  # such a module runs once at a time on a host
        pairs = {(self.module.id, t.hostname) for t in self.targets} if exclusive else set()
        self.ticket = Ticket(self.job_id, frozenset(pairs))

    def ok_hosts(self) -> int:
        return sum(1 for status in self.statuses.values() if status == HostStatus.OK)


Executor = Callable[..., Iterator[Event]]


class Engine:
    def __init__(
        self,
        config: Config,
        registry: ModuleRegistry,
        recorder: Recorder,
        *,
        name: str,
        executor: Executor = execution.execute,
    ) -> None:
        self.config = config
        self.registry = registry
        self.name = name
        self.recorder = DurableRecorder(recorder, config.data_dir / "spool")
        self._orders = orders.queue_cipher(config.data_dir)
        self.instance = _instance(config.data_dir)  # this daemon among those of its name
        self._execute = executor
        self._queue = JobQueue()
        self._jobs: dict[int, RunningJob] = {}
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._replaced = 0  # worker threads that died and were replaced
        self._stopping = threading.Event()
        self._reported = -1  # the registry's version the record was last told about
        self._report_lock = threading.Lock()

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> None:
        """Take up what a previous run left (see ``_take_over``), then start the workers."""
        self.recorder.drain(START_DRAIN)  # what a previous run spooled goes in first
        self._take_over()
        self._workers = [self._worker(n) for n in range(self.config["daemon.workers"])]
        threading.Thread(target=self._poll_queue, name="queue-poller", daemon=True).start()
        threading.Thread(target=self._sweep, name="job-sweeper", daemon=True).start()
        threading.Thread(target=self._watch_workers, name="job-watcher", daemon=True).start()
        threading.Thread(target=self._watch_modules, name="module-watcher", daemon=True).start()

    def _worker(self, number: int) -> threading.Thread:
        worker = threading.Thread(target=self._work, name=f"job-worker-{number}", daemon=True)
        worker.start()
        return worker

    def _watch_workers(self) -> None:
        """A worker never dies of a job; should one die all the same, it is replaced."""
        while not self._stopping.wait(WATCH_WORKERS_EVERY):
            for number, worker in enumerate(self._workers):
                if not worker.is_alive() and not self._stopping.is_set():
                    log.error("%s died: starting a new one", worker.name)
                    self._replaced += 1
                    self._workers[number] = self._worker(number)

    def _watch_modules(self) -> None:
        """New module files reach the console (disabled) without anyone running them."""
        while True:
            self.report_modules()
            if self._stopping.wait(REPORT_MODULES_EVERY):
                return

    def report_modules(self) -> None:
        """Tell the record about the module files once after each change in the folder."""
        with self._report_lock:
            version, reports = self.registry.reports()
            if version == self._reported:
                return
            try:
                self.recorder.report_modules(reports)
            except RecordUnavailable as exc:  # told at the next look
                log.warning("could not report the module files to the record: %s", exc)
                return
            self._reported = version

    def health(self) -> dict[str, Any]:
        """What ``ping`` reports: ``status`` ok or degraded, and the ``problems`` why."""
        record = self.recorder.health()
        configured = self.config["daemon.workers"]
        alive = sum(worker.is_alive() for worker in self._workers)
        problems = []
        if record["database"] != "ok":
            problems.append(f"the database is unreachable: {record['database_error']}")
        if record["spooled"]:
            problems.append(f"{record['spooled']} record write(s) wait in the spool")
        if alive < configured and not self._stopping.is_set():
            problems.append(f"{alive} of {configured} job workers are alive")
        if self._replaced:
            problems.append(f"{self._replaced} job worker(s) died and were replaced; see the log")
        return {
            "status": "degraded" if problems else "ok",
            "problems": problems,
            "database": record["database"],
            "spooled": record["spooled"],
            "workers": alive,
            "workers_configured": configured,
            "workers_replaced": self._replaced,
        }

    def shutdown(self, grace: float) -> None:
        """Let running jobs finish within ``grace`` seconds; leave the rest to their
        processes, and the queued jobs in the record, for the next start."""
        self._stopping.set()
        never_started = set(self._queue.close())
        deadline = time.monotonic() + grace
        with self._lock:
            running = [j for j in self._jobs.values() if j.job_id not in never_started]
        for job in running:
            job.done.wait(max(0.0, deadline - time.monotonic()))
        unfinished = [job for job in running if not job.done.is_set()]
        for job in unfinished:  # their processes go on; the next start adopts them
            job.detach.set()
        if unfinished:
            log.warning("left %d running job(s) to their processes", len(unfinished))
        with self._lock:
            queued = [self._jobs[job_id] for job_id in never_started if job_id in self._jobs]
        for job in queued:  # they stay queued, for the next start; a waiting client is told
            self._forget(job)
        for worker in self._workers:
            worker.join(KILL_WAIT)
        self.recorder.drain(max(0.0, deadline - time.monotonic()))

    def _sweep(self) -> None:
        """Now and then, fail what the web created but never delivered to any daemon."""
        reason = "the web stopped before it handed this part of the job to a daemon"
        while True:
            try:
                failed = self.recorder.fail_undelivered_parts(UNDELIVERED_AFTER, reason)
            except RecordUnavailable as exc:  # the database may be down a while: try later
                log.warning("could not look for undelivered job parts: %s", exc)
            else:
                if failed:
                    log.warning("failed %d job part(s) that no daemon was ever given", failed)
            if self._stopping.wait(SWEEP_EVERY):
                return

    # -- operations ---------------------------------------------------------------

    def submit(self, client: str, body: dict[str, Any]) -> int:
        if self._queue.closed:
            raise SubmitError("unavailable", "the daemon is shutting down; try again shortly")
        self.report_modules()  # a file dropped a moment ago is recorded before it is refused
        module = self._module(body.get("module"))
        targets = self._targets(body.get("targets"))
        try:
            params = validate_params(module.params, body.get("params") or {})
        except ParamError as exc:
            raise SubmitError("invalid_params", str(exc), exc.field) from exc
        try:
            rollout = Rollout.from_dict(body.get("rollout"))
        except ValueError as exc:
            raise SubmitError("invalid_request", str(exc), "rollout") from exc
        timeout = self._timeout(body.get("timeout"))
        requested_by = str(body.get("requested_by") or client)[:150]
        request = body.get("request")
        if request is not None and not 0 < len(request) <= MAX_REQUEST_ID:
            raise SubmitError("invalid_request", f"request must be 1-{MAX_REQUEST_ID} characters")
        if body.get("job") is None and request is not None:
            found = self.recorder.job_for_request(client, request)
            if found is not None:  # a retry of a submit that made it: the same job
                return found
        order = orders.seal(
            self._orders,
            {
                "module": module.id,
                "targets": [t.to_dict() for t in targets],
                "params": params,
                "timeout": timeout,
                "rollout": rollout.as_dict() if rollout else None,
            },
        )
        part_id = None
        if body.get("job") is not None:
            job_id = body["job"]
            running = self._jobs.get(job_id)
            if running is not None and running.part_id is not None:
                return job_id  # a retry of the submit that claimed it
            part_id = self._claim_part(job_id, module, targets, order)
        else:
            job_id = self.recorder.create_job(
                module_id=module.id,
                requested_by=requested_by,
                client=client,
                targets=[t.hostname for t in targets],
                params=mask_params(module.params, params),
                rollout=rollout.as_dict() if rollout else None,
                backend=self.config["daemon.backend"],
                timeout=timeout,
                daemon=self.name,
                request=request,
                order=order,
            )
        self._enqueue(RunningJob(job_id, module, targets, params, timeout, rollout, part_id))
        log.info(
            "job %d queued: module %d on %d host(s) for %s via %s",
            job_id,
            module.id,
            len(targets),
            requested_by,
            client,
        )
        return job_id

    def _enqueue(self, job: RunningJob, *, first: bool = False) -> None:
        with self._lock:
            self._jobs[job.job_id] = job
        self._queue.put(job.ticket, first=first)

    def _take_over(self) -> None:
        """Adopt the jobs this daemon ran before it stopped (their journals tell what their
        processes did, and do); the record's other jobs it ran end ``interrupted``.
        What it had queued waits in the record: ``_poll_queue`` takes it up."""
        adopted = []
        for job_id, part_id, sealed in self.recorder.claimed(self.instance):
            job = self._from_order(job_id, part_id, sealed)
            if job is None:
                continue
            job.reader = journal.Reader(journal.journal_path(self.config.data_dir, job_id))
            job.resumed = job.reader.batches()
            if job.resumed:
                adopted.append(job)
        stale = self.recorder.interrupt_unfinished(
            self.name,
            self.instance,
            "the daemon stopped before it ended",
            keep=[job.job_id for job in adopted],
        )
        if stale:
            log.warning("marked %d job(s) left by a previous run as interrupted", stale)
        for job in adopted:
            self._enqueue(job, first=True)
            log.info("job %d adopted from its journal", job.job_id)

    def _poll_queue(self) -> None:
        """Take from the record's queue what this daemon does not hold (queued through
        another daemon of the zone, or by this one before a restart) while it has
        workers to spare, and pass on the cancels asked through the others."""
        while True:
            try:
                for job_id in self.recorder.cancels(self.instance):
                    if (job := self._jobs.get(job_id)) is not None:
                        job.cancel.set()
                spare = self.config["daemon.workers"] - len(self._jobs)
                if spare > 0:
                    for entry in self.recorder.queued(self.name, list(self._jobs), spare):
                        if (job := self._from_order(*entry)) is not None:
                            self._enqueue(job)
            except RecordUnavailable as exc:  # the database may be down a while: try later
                log.debug("could not look at the queue: %s", exc)
            if self._stopping.wait(QUEUE_POLL):
                return

    def _take(self, job: RunningJob, *, exclusive: bool = True) -> str:
        """Take ``job`` from the zone's queue in the record (see ``Recorder.claim``), or
        ``unavailable`` while the record cannot be reached."""
        locks = [list(lock) for lock in job.ticket.locks] if exclusive else []
        try:
            return self.recorder.claim(job.job_id, job.part_id, self.name, self.instance, locks)
        except RecordUnavailable as exc:
            log.warning("job %d waits for the record: %s", job.job_id, exc)
        except Exception:  # a bug here must not kill the worker: the job waits
            log.exception("taking job %d from the queue failed", job.job_id)
        return "unavailable"

    def _from_order(self, job_id: int, part_id: int | None, sealed: str) -> RunningJob | None:
        """The job a kept order describes; None (and the job failed) if it cannot run."""
        try:
            order = orders.open_sealed(self._orders, sealed)
            module = self.registry.get(order["module"])
            targets = [Target(**target) for target in order["targets"]]
            rollout = Rollout.from_dict(order["rollout"])
        except (orders.OrderError, NoSuchModule, KeyError, TypeError, ValueError) as exc:
            reason = f"not run on after the daemon restarted: {exc}"
            log.error("job %d: %s", job_id, reason)
            if part_id is None:
                self.recorder.finish_job(job_id, JobStatus.FAILED, reason)
            else:
                self.recorder.finish_part(part_id, JobStatus.FAILED, reason)
            return None
        return RunningJob(
            job_id, module, targets, order["params"], order["timeout"], rollout, part_id
        )

    def state(self, job_id: int, after: int = 0) -> dict[str, Any]:
        state = self.recorder.job_state(job_id, after)
        if state is None:
            raise SubmitError("unknown_job", f"no job {job_id}")
        return state

    def wait(self, job_id: int, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        job = self._jobs.get(job_id)
        if job is not None:
            job.done.wait(timeout)
            if not job.elsewhere:
                return self.state(job_id)
        # Not ours (another zone's part, or another daemon of the zone took it): the record.
        while (state := self.state(job_id))["status"] not in FINAL_STATUSES and (
            time.monotonic() < deadline
        ):
            time.sleep(min(WATCH_EVERY, max(0.0, deadline - time.monotonic())))
        return state

    def cancel(self, job_id: int) -> dict[str, Any]:
        job = self._jobs.get(job_id)
        if job is not None and not job.elsewhere:
            job.cancel.set()
            if self._queue.discard(job_id):
                self._cancel_queued(job)
        elif not self.recorder.ask_cancel(job_id):  # nobody runs it: maybe it waits
            for entry in self.recorder.queued(self.name, [], 1, job_id=job_id):
                if (queued := self._from_order(*entry)) is not None:
                    self._cancel_queued(queued)
        return self.state(job_id)

    def _cancel_queued(self, job: RunningJob) -> None:
        """End a job before it started, unless a daemon of the zone took it meanwhile."""
        if self._take(job, exclusive=False) == "ok":
            self._close_unrun(job, NOT_RUN_BECAUSE[JobStatus.CANCELLED])
            self._finish(job, JobStatus.CANCELLED, "cancelled before it started")
        else:
            self.recorder.ask_cancel(job.job_id)
        self._forget(job)

    # -- running ------------------------------------------------------------------

    def _work(self) -> None:
        while (ticket := self._queue.take()) is not None:
            job = self._jobs[ticket.job_id]
            outcome = "ok" if job.resumed else self._take(job)
            if outcome != "ok":
                self._queue.release(ticket)
                self._not_now(job, outcome)
                continue
            try:
                self._run(job)
            except BaseException as exc:  # a bug here must not hide the job
                log.exception("job %d crashed the engine", job.job_id)
                self._close_unrun(job, f"internal error: {exc!r}")
                self._finish(job, JobStatus.FAILED, f"internal error: {exc!r}")
                if not isinstance(exc, Exception):
                    raise  # the thread ends (the watcher starts another)
            finally:
                self._queue.release(ticket)
                self._forget(job)

    def _not_now(self, job: RunningJob, outcome: str) -> None:
        """A job this daemon could not take from the zone's queue: ``taken`` by another
        daemon (or ended); ``busy`` or ``unavailable``: try again in a moment."""
        if outcome == "taken":
            job.elsewhere = True
            self._forget(job)
        else:
            threading.Timer(CLAIM_AGAIN, self._queue.put, args=(job.ticket,)).start()

    def _run(self, job: RunningJob) -> None:
        if not job.resumed:  # it may have been disabled while the job waited
            try:
                why = "" if self._enabled(job.module) else f"module {job.module.id} is not enabled"
            except RecordUnavailable as exc:  # when in doubt, it does not run
                why = f"whether module {job.module.id} is enabled could not be read: {exc}"
            if why:
                self._close_unrun(job, why)
                self._finish(job, JobStatus.FAILED, why)
                return
        deadline = time.monotonic() + job.timeout
        if job.resumed:  # the deadline its processes were given
            deadline = time.monotonic() + job.resumed[-1].header["deadline"] - time.time()
            recorded = _Recorded(self.recorder.recorded_output(job.job_id))
        rollout = job.rollout or Rollout()
        done = failed = 0
        stop, reason = "", None
        ran_out = False  # a batch was left unstarted for want of time
        batches = list(rollout.batches(job.targets))
        for number, batch in enumerate(batches, 1):
            remaining = deadline - time.monotonic()
            adopted = number <= len(job.resumed)
            if job.cancel.is_set() or job.detach.is_set():
                break
            if not adopted and (remaining <= 0 or (number > 1 and remaining < DEADLINE_MARGIN)):
                ran_out = True
                break
            ended: list[HostDone] = []  # written together: one transaction, not one a host
            if adopted:
                events = recorded.missing(
                    execution.resume(
                        job.resumed[number - 1],
                        job.reader,
                        config=self.config,
                        deadline=deadline,
                        cancel=job.cancel,
                        detach=job.detach,
                    )
                )
            else:
                events = self._execute(
                    job.module,
                    batch,
                    job.params,
                    config=self.config,
                    timeout=remaining,
                    cancel=job.cancel,
                    journal_to=self._journal(job),
                    detach=job.detach,
                )
            for event in events:
                if isinstance(event, HostDone):
                    ended.append(event)
                    continue
                self._finish_hosts(job, ended)
                self._record(job, event)
            self._finish_hosts(job, ended)
            done += len(batch)
            failed = len(job.statuses) - job.ok_hosts()
            if job.rollout and number < len(batches):
                after = "the canary" if number == 1 and rollout.canary else f"batch {number}"
                reason = rollout.stop_reason(done, failed, after)
                if reason:
                    stop = f"{reason}; {len(job.targets) - done} host(s) not run"
                    log.warning("job %d: %s", job.job_id, stop)
                    break
        if job.detach.is_set():  # the daemon stops: the next start adopts the job
            return
        ending = self._ending(job, deadline, ran_out)
        why = NOT_RUN_BECAUSE.get(ending) or (f"the rollout {reason}" if reason else None)
        if why:
            self._close_unrun(job, why)
        status = final_status(job.ok_hosts(), len(job.targets), {ending} if ending else ())
        self._finish(job, status, stop=stop)

    def _close_unrun(self, job: RunningJob, why: str) -> None:
        """Hosts the job never reached still get their row, saying why."""
        unrun = [t.hostname for t in job.targets if t.hostname not in job.statuses]
        self._finish_hosts(job, [HostDone(h, HostStatus.NOT_RUN, f"not run: {why}") for h in unrun])

    def _record(self, job: RunningJob, event: Event) -> None:
        recorder, job_id = self.recorder, job.job_id
        if isinstance(event, Output):
            recorder.save_output(job_id, list(event.chunks))
        elif isinstance(event, HostResult):
            recorder.save_step(job_id, event)
        elif isinstance(event, StepStarted):
            recorder.start_step(job_id, event.step, event.action, list(event.hosts), event.started)
        else:
            recorder.cut_step(job_id, event.host, event.step, event.status, event.note)

    def _finish_hosts(self, job: RunningJob, ended: list[HostDone]) -> None:
        """Write the ends of hosts the module is done with (and empty ``ended``)."""
        if ended:
            for event in ended:
                job.statuses[event.host] = event.status
            self.recorder.finish_hosts(job.job_id, [(e.host, e.status, e.error) for e in ended])
            ended.clear()

    def _finish(self, job: RunningJob, status: str, error: str = "", stop: str = "") -> None:
        if job.part_id is None:
            self.recorder.finish_job(job.job_id, status, error, stop)
        else:
            self.recorder.finish_part(job.part_id, status, error, stop)
        self._journal(job).unlink(missing_ok=True)  # the record (or the spool) has it all

    def _journal(self, job: RunningJob) -> Path:
        return journal.journal_path(self.config.data_dir, job.job_id)

    @staticmethod
    def _ending(job: RunningJob, deadline: float, ran_out: bool) -> JobStatus | None:
        """How the job ended, when that overrides its hosts' results (cancel, timeout)."""
        if job.cancel.is_set():
            return JobStatus.CANCELLED
        left = deadline - time.monotonic()
        timed_out = HostStatus.TIMEOUT in job.statuses.values()
        if ran_out or left <= 0 or (timed_out and left < DEADLINE_MARGIN):
            return JobStatus.TIMEOUT
        return None

    def _forget(self, job: RunningJob) -> None:
        job.done.set()
        with self._lock:
            self._jobs.pop(job.job_id, None)

    # -- request checks -----------------------------------------------------------

    def _claim_part(
        self, job_id: Any, module: LoadedModule, targets: list[Target], order: str
    ) -> int:
        """This daemon's part of a job the web created (one part per zone it spans)."""
        if isinstance(job_id, bool) or not isinstance(job_id, int):
            raise SubmitError("invalid_request", "job must be a job id (integer)", "job")
        if job_id in self._jobs:
            raise SubmitError("invalid_request", f"job {job_id} already runs on this daemon", "job")
        part_id = self.recorder.claim_part(
            job_id, module.id, [t.hostname for t in targets], self.name, order
        )
        if part_id is None:
            raise SubmitError(
                "invalid_request",
                f"job {job_id} has no unclaimed part for module {module.id} on these hosts",
                "job",
            )
        return part_id

    def _module(self, raw: Any) -> LoadedModule:
        """The module to run; refused alike whether it has no file or is not enabled."""
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise SubmitError("invalid_request", "module must be a module id (integer)", "module")
        try:
            module = self.registry.get(raw)
        except NoSuchModule as exc:
            log.warning("refused module %d: %s", raw, exc)
            raise SubmitError("unknown_module", f"{NOT_PERMITTED} {raw}", "module") from exc
        if not self._enabled(module):
            raise SubmitError("unknown_module", f"{NOT_PERMITTED} {raw}", "module")
        return module

    def _enabled(self, module: LoadedModule) -> bool:
        """Whether the record says an operator enabled ``module`` with its file's schema."""
        if self.recorder.module_enabled(module.id, module.params):
            return True
        log.warning(
            "refused module %d: not enabled in the record (a new file, disabled, or its "
            "parameter schema changed since an operator enabled it)",
            module.id,
        )
        return False

    def _targets(self, raw: Any) -> list[Target]:
        """Structured targets; one given by hostname alone is looked up in the inventory."""
        if not isinstance(raw, list) or not raw or not all(isinstance(t, dict) for t in raw):
            raise SubmitError(
                "invalid_request", "targets must be a non-empty list of objects", "targets"
            )
        by_name = [t.get("hostname") for t in raw if set(t) == {"hostname"}]
        known = self.recorder.inventory_targets(by_name) if by_name else {}
        unknown = sorted(str(name) for name in by_name if name not in known)
        if unknown:
            raise SubmitError(
                "invalid_request",
                f"not enabled servers in the inventory: {', '.join(unknown)[:200]}",
                "targets",
            )
        try:
            targets = [Target(**known.get(t.get("hostname"), t)) for t in raw]
        except (TypeError, ValueError) as exc:
            raise SubmitError("invalid_request", f"bad target: {exc}", "targets") from exc
        if len({t.hostname for t in targets}) != len(targets):
            raise SubmitError("invalid_request", "a host is listed twice", "targets")
        return targets

    def _timeout(self, raw: Any) -> float:
        if raw is None:
            return float(self.config["daemon.job_timeout"])
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw <= 86400:
            raise SubmitError("invalid_request", "timeout must be 0 < seconds <= 86400", "timeout")
        return float(raw)


class _Recorded:
    """What the record holds of an adopted job already, so that replaying its journal
    (every other write is idempotent) adds only the live output it lacks."""

    def __init__(self, recorded: dict[str, list]) -> None:
        self.ended = {(host, step) for host, step in recorded["ended"]}  # their output went
        self.printed = {(host, step, stream): n for host, step, stream, n in recorded["printed"]}

    def missing(self, events: Iterator[Event]) -> Iterator[Event]:
        for event in events:
            if not isinstance(event, Output):
                yield event
            elif chunks := [c for chunk in event.chunks if (c := self._new(*chunk))]:
                yield Output(tuple(chunks))

    def _new(self, host: str, step: int, stream: str, text: str) -> tuple | None:
        """The part of a chunk not recorded yet (each stream's text is a prefix-ordered whole)."""
        if (host, step) in self.ended:
            return None
        key = (host, step, stream)
        have = self.printed.get(key, 0)
        self.printed[key] = max(0, have - len(text))
        return (host, step, stream, text[have:]) if have < len(text) else None


def _instance(data_dir: Path) -> str:
    """This daemon's id, kept in its data folder: the same after a restart (it adopts what
    it ran), another for another daemon sharing its name (and queue)."""
    path = data_dir / "instance"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(uuid.uuid4().hex)
    return path.read_text().strip()
