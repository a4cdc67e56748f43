"""The job engine: queue, worker threads, rollout, timeouts, cancel, recording.

It is the daemon's one source of job state. Every job any client submits is
written through the :class:`~omserver.jobs.recorder.Recorder` it was handed:
each step as it starts, what it prints while it runs, each host's result of it
and each host's end, the moment they arrive.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from omserver.config import Config
from omserver.jobs import execution
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

KILL_WAIT = 5.0  # seconds a worker gets, after shutdown cancelled its job, to kill its process
UNDELIVERED_AFTER = timedelta(minutes=5)  # a web job's part no daemon took by then: failed
SWEEP_EVERY = 60.0  # seconds between looks for such parts
# Seconds before its deadline a job has run out of time: a step the deadline cut short
# may end (as timeout) just before it, and a later batch started then could only time out.
DEADLINE_MARGIN = 1.0
WATCH_EVERY = 0.5  # seconds between reads of a job another daemon runs, while waiting on it
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
    ticket: Ticket
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    part_id: int | None = None  # set when it runs one zone's part of a web job
    statuses: dict[str, str] = field(default_factory=dict)  # host -> its status, once done

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
        self.recorder = recorder
        self._execute = executor
        self._queue = JobQueue()
        self._jobs: dict[int, RunningJob] = {}
        self._lock = threading.Lock()
        self._workers = [
            threading.Thread(target=self._work, name=f"job-worker-{n}", daemon=True)
            for n in range(config["daemon.workers"])
        ]
        self._stopping = threading.Event()

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> None:
        stale = self.recorder.interrupt_unfinished(self.name, "the daemon stopped before it ended")
        if stale:
            log.warning("marked %d job(s) left by a previous run as interrupted", stale)
        for worker in self._workers:
            worker.start()
        threading.Thread(target=self._sweep, name="job-sweeper", daemon=True).start()

    def shutdown(self, grace: float) -> None:
        """Let running jobs finish within ``grace`` seconds; interrupt the rest."""
        self._stopping.set()
        never_started = set(self._queue.close())
        deadline = time.monotonic() + grace
        with self._lock:
            running = [j for j in self._jobs.values() if j.job_id not in never_started]
        for job in running:
            job.done.wait(max(0.0, deadline - time.monotonic()))
        unfinished = [job for job in running if not job.done.is_set()]
        for job in unfinished:
            job.cancel.set()
        self.recorder.interrupt_unfinished(
            self.name,
            "the daemon was stopped before the job ended",
            [*never_started, *(job.job_id for job in unfinished)],
        )
        with self._lock:
            queued = [self._jobs[job_id] for job_id in never_started if job_id in self._jobs]
        for job in queued:  # a client waiting on one has its answer now
            self._forget(job)
        for worker in self._workers:  # their late writes to closed jobs are dropped
            worker.join(KILL_WAIT)

    def _sweep(self) -> None:
        """Now and then, fail what the web created but never delivered to any daemon."""
        reason = "the web stopped before it handed this part of the job to a daemon"
        while True:
            try:
                failed = self.recorder.fail_undelivered_parts(UNDELIVERED_AFTER, reason)
            except Exception:  # the database may be down for a while: try again later
                log.exception("looking for undelivered job parts failed")
            else:
                if failed:
                    log.warning("failed %d job part(s) that no daemon was ever given", failed)
            if self._stopping.wait(SWEEP_EVERY):
                return

    # -- operations ---------------------------------------------------------------

    def submit(self, client: str, body: dict[str, Any]) -> int:
        if self._queue.closed:
            raise SubmitError("unavailable", "the daemon is shutting down; try again shortly")
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
        self.recorder.ensure_module(
            module.id, module.name, module.caption, module.params, list(module.backends)
        )
        part_id = None
        if body.get("job") is not None:
            job_id = body["job"]
            part_id = self._claim(job_id, module, targets)
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
            )
        locks = (
            frozenset((module.id, t.hostname) for t in targets) if module.exclusive else frozenset()
        )
        ticket = Ticket(job_id, locks)
        job = RunningJob(job_id, module, targets, params, timeout, rollout, ticket, part_id=part_id)
        with self._lock:
            self._jobs[job_id] = job
        self._queue.put(job.ticket)
        log.info(
            "job %d queued: module %d on %d host(s) for %s via %s",
            job_id,
            module.id,
            len(targets),
            requested_by,
            client,
        )
        return job_id

    def state(self, job_id: int, after: int = 0) -> dict[str, Any]:
        state = self.recorder.job_state(job_id, after)
        if state is None:
            raise SubmitError("unknown_job", f"no job {job_id}")
        return state

    def wait(self, job_id: int, timeout: float) -> dict[str, Any]:
        job = self._jobs.get(job_id)
        if job is not None:
            job.done.wait(timeout)
            return self.state(job_id)
        # Not ours (another zone's part, or queued by another daemon): watch the record.
        deadline = time.monotonic() + timeout
        while (state := self.state(job_id))["status"] not in FINAL_STATUSES and (
            time.monotonic() < deadline
        ):
            time.sleep(min(WATCH_EVERY, max(0.0, deadline - time.monotonic())))
        return state

    def cancel(self, job_id: int) -> dict[str, Any]:
        job = self._jobs.get(job_id)
        if job is not None:
            job.cancel.set()
            if self._queue.discard(job_id):
                self._close_unrun(job, NOT_RUN_BECAUSE[JobStatus.CANCELLED])
                self._finish(job, JobStatus.CANCELLED, "cancelled before it started")
                self._forget(job)
        return self.state(job_id)

    # -- running ------------------------------------------------------------------

    def _work(self) -> None:
        while (ticket := self._queue.take()) is not None:
            job = self._jobs[ticket.job_id]
            try:
                self._run(job)
            except Exception as exc:  # a bug here must not kill the worker or hide the job
                log.exception("job %d crashed the engine", job.job_id)
                self._finish(job, JobStatus.FAILED, f"internal error: {exc}")
            finally:
                self._queue.release(ticket)
                self._forget(job)

    def _run(self, job: RunningJob) -> None:
        self.recorder.mark_running(job.job_id, job.part_id)
        deadline = time.monotonic() + job.timeout
        rollout = job.rollout or Rollout()
        done = failed = 0
        stop, reason = "", None
        ran_out = False  # a batch was left unstarted for want of time
        batches = list(rollout.batches(job.targets))
        for number, batch in enumerate(batches, 1):
            remaining = deadline - time.monotonic()
            if job.cancel.is_set():
                break
            if remaining <= 0 or (number > 1 and remaining < DEADLINE_MARGIN):
                ran_out = True
                break
            ended: list[HostDone] = []  # written together: one transaction, not one a host
            for event in self._execute(
                job.module,
                batch,
                job.params,
                config=self.config,
                timeout=remaining,
                cancel=job.cancel,
            ):
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

    def _claim(self, job_id: Any, module: LoadedModule, targets: list[Target]) -> int:
        """This daemon's part of a job the web created (one part per zone it spans)."""
        if isinstance(job_id, bool) or not isinstance(job_id, int):
            raise SubmitError("invalid_request", "job must be a job id (integer)", "job")
        if job_id in self._jobs:
            raise SubmitError(
                "invalid_request", f"a part of job {job_id} already runs on this daemon", "job"
            )
        part_id = self.recorder.claim_part(
            job_id, module.id, [t.hostname for t in targets], self.name
        )
        if part_id is None:
            raise SubmitError(
                "invalid_request",
                f"job {job_id} has no unclaimed part for module {module.id} on these hosts",
                "job",
            )
        return part_id

    def _module(self, raw: Any) -> LoadedModule:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise SubmitError("invalid_request", "module must be a module id (integer)", "module")
        try:
            return self.registry.get(raw)
        except NoSuchModule as exc:
            raise SubmitError("unknown_module", str(exc), "module") from exc

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
