"""How the record of truth is written: one job row, its parts, its hosts and their steps.

This module is the daemon's :class:`omserver.jobs.recorder.Recorder` (the
``rundaemon`` command hands it to the engine); the web uses it too.

A job a client sends a daemon directly is created by that daemon. A job from
the web is created by the web with one part per zone; each zone's daemon claims
its part and writes its hosts' results into the same job, and whoever closes the
last part closes the job. Every function here is called from the daemon's
worker threads (or, for a zone it could not reach, the web); each write is its
own short transaction so the console sees steps and lines as they arrive.

Every row written about a job's hosts (host, step, live output) takes the job's
next sequence number, so a reader asking "what changed after N" misses none.
A running step's output is kept as it comes (``JobOutput``); the step's own
result replaces it, or, when the job's end cuts the step short, it becomes the
step's output.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q, QuerySet, Sum
from django.db.models.functions import Length
from django.utils import timezone

from omserver.sdk import HostResult
from omserver.vocabulary import ACTIVE_STATUSES, HostStatus, JobStatus, final_status
from omserverweb.audit.chain import JOBS_SCOPE, ensure_heads, locked_heads, sign
from omserverweb.audit.chainkeys import keyring
from omserverweb.audit.jobchain import job_content
from omserverweb.audit.models import ChainHead
from omserverweb.inventory.models import Server
from omserverweb.jobs.models import (
    Job,
    JobClaim,
    JobHost,
    JobOutput,
    JobPart,
    JobStep,
    ReplayedWrite,
    ZoneQueue,
)
from omserverweb.jobs.queries import job_changes
from omserverweb.modules import services as module_review

P = ParamSpec("P")
R = TypeVar("R")


def fresh_connection(func: Callable[P, R]) -> Callable[P, R]:
    """Start a unit of work on a usable connection: a daemon thread may have idled
    past the database server's timeout (not inside a transaction, where it would
    close the connection the transaction is on)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if not connection.in_atomic_block:
            close_old_connections()
        return func(*args, **kwargs)

    return wrapper


@fresh_connection
def report_modules(modules: list[dict[str, Any]]) -> None:
    """The module files a daemon found: new ones arrive disabled (see the modules app)."""
    module_review.report_modules(modules)


@fresh_connection
def module_enabled(module_id: int, schema: list) -> bool:
    return module_review.module_enabled(module_id, schema)


@fresh_connection
def inventory_targets(hostnames: list[str]) -> dict[str, dict[str, Any]]:
    """Targets named only by hostname, completed from the inventory's enabled servers."""
    servers = Server.objects.filter(hostname__in=hostnames, enabled=True)
    return {s.hostname: s.as_target() for s in servers}


@fresh_connection
def create_job(**fields: Any) -> int:
    return Job.objects.create(status=JobStatus.QUEUED, **fields).pk


@fresh_connection
def job_for_request(client: str, request: str) -> int | None:
    """The job ``client`` submitted with this request id, if any (a retried submit)."""
    return Job.objects.filter(client=client, request=request).values_list("pk", flat=True).first()


@fresh_connection
def claim_part(
    job_id: int, module_id: int, hosts: list[str], daemon: str, order: str = ""
) -> int | None:
    """Take the web's queued part of this module on exactly these hosts; its id, or None.

    A part is claimed once: a replayed or second submission finds nothing to take.
    """
    with transaction.atomic():
        if not Job.objects.filter(pk=job_id, module_id=module_id).exists():
            return None
        unclaimed = JobPart.objects.select_for_update().filter(
            job_id=job_id, daemon="", status=JobStatus.QUEUED
        )
        part = next((p for p in unclaimed if sorted(p.hosts) == sorted(hosts)), None)
        if part is None:
            return None
        JobPart.objects.filter(pk=part.pk).update(daemon=daemon, order=order)
    return part.pk


Entry = tuple[int, int | None, str]  # a queued job or part: (job, part or None, order)


def _queued(daemon: str, job_id: int | None = None) -> tuple[QuerySet[Job], QuerySet[JobPart]]:
    """The jobs and parts waiting in ``daemon``'s queue (with an order to run them by)."""
    queued = {"daemon": daemon, "status": JobStatus.QUEUED}
    jobs = Job.objects.filter(**queued).exclude(order="")
    parts = JobPart.objects.filter(**queued).exclude(order="")
    if job_id is not None:
        jobs, parts = jobs.filter(pk=job_id), parts.filter(job_id=job_id)
    return jobs, parts


@fresh_connection
def queued(daemon: str, exclude: list[int], limit: int, job_id: int | None = None) -> list[Entry]:
    """The oldest of ``daemon``'s queued jobs and parts but ``exclude``, or job ``job_id``."""
    jobs, parts = _queued(daemon, job_id)
    jobs = jobs.exclude(pk__in=exclude).order_by("pk").values_list("pk", "order")[:limit]
    parts = parts.exclude(job_id__in=exclude).order_by("job_id")
    return sorted(
        [(pk, None, order) for pk, order in jobs]
        + list(parts.values_list("job_id", "pk", "order")[:limit])
    )[:limit]


@fresh_connection
def claimed(instance: str) -> list[Entry]:
    """What daemon ``instance`` runs, by the record (a restarted one takes it up again)."""
    claims = JobClaim.objects.filter(instance=instance).select_related("job", "part")
    return sorted((c.job_id, c.part_id, (c.part or c.job).order) for c in claims)


@fresh_connection
def claim(job_id: int, part_id: int | None, daemon: str, instance: str, locks: list) -> str:
    """Take a job (or part) from ``daemon``'s queue for ``instance`` to run: ``ok``;
    ``taken`` when it waits there no more (another daemon took it, or it was
    cancelled); ``busy`` while a job of the zone holds one of its ``locks``."""
    # Outside the transaction (see ensure_heads); once there, an INSERT IGNORE of nothing.
    ZoneQueue.objects.bulk_create([ZoneQueue(name=daemon)], ignore_conflicts=True)
    rows = JobPart.objects.filter(pk=part_id) if part_id else Job.objects.filter(pk=job_id)
    with transaction.atomic():
        ZoneQueue.objects.select_for_update().get(name=daemon)  # one claim at a time
        if not rows.select_for_update().filter(status=JobStatus.QUEUED).exists():
            return "taken"
        held = JobClaim.objects.filter(daemon=daemon).values_list("locks", flat=True)
        if {tuple(lock) for lock in locks} & {tuple(lock) for h in held for lock in h}:
            return "busy"
        key = f"{job_id}/{part_id}" if part_id else str(job_id)
        JobClaim.objects.create(
            key=key, job_id=job_id, part_id=part_id, daemon=daemon, instance=instance, locks=locks
        )
        now = timezone.now()
        rows.update(status=JobStatus.RUNNING, started_at=now)
        if part_id:
            Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
                status=JobStatus.RUNNING, started_at=now
            )
    return "ok"


@fresh_connection
def ask_cancel(job_id: int) -> bool:
    """Tell the daemons running the job to stop it; False if none runs it."""
    return bool(JobClaim.objects.filter(job_id=job_id).update(cancel=True))


@fresh_connection
def cancels(instance: str) -> list[int]:
    """The jobs ``instance`` runs that someone asked to stop."""
    return list(
        JobClaim.objects.filter(instance=instance, cancel=True).values_list("job_id", flat=True)
    )


@fresh_connection
def recorded_output(job_id: int) -> dict[str, list]:
    ended = JobStep.objects.filter(job_id=job_id).exclude(status=HostStatus.RUNNING)
    printed = (
        JobOutput.objects.filter(job_id=job_id)
        .values("host", "step", "stream")
        .annotate(chars=Sum(Length("text")))
    )
    return {
        "ended": [list(row) for row in ended.values_list("host", "number")],
        "printed": [[p["host"], p["step"], p["stream"], p["chars"]] for p in printed],
    }


def _take_seqs(job_id: int, count: int = 1, *, closed_too: bool = False) -> int | None:
    """Reserve ``count`` sequence numbers of the job (inside the caller's transaction);
    the first, or None when the job is closed (a closed job is chained, and changing
    it would read as tampering)."""
    jobs = Job.objects.filter(pk=job_id)
    if not closed_too:
        jobs = jobs.filter(status__in=ACTIVE_STATUSES)
    if not jobs.update(last_seq=F("last_seq") + count):
        return None
    return Job.objects.filter(pk=job_id).values_list("last_seq", flat=True).get() - count + 1


@fresh_connection
def start_step(job_id: int, step: int, action: str, hosts: list[str], started: float) -> None:
    with transaction.atomic():
        seq = _take_seqs(job_id, 2 * len(hosts))
        if seq is None:
            return
        known = set(
            JobHost.objects.filter(job_id=job_id, host__in=hosts).values_list("host", flat=True)
        )
        new = [h for h in hosts if h not in known]
        JobHost.objects.bulk_create(
            JobHost(job_id=job_id, host=host, status=HostStatus.RUNNING, seq=seq + n)
            for n, host in enumerate(new)
        )
        at = datetime.fromtimestamp(started, UTC)
        # None, unless a write the database took was reported lost and sent again
        begun = set(
            JobStep.objects.filter(job_id=job_id, host__in=hosts, number=step).values_list(
                "host", flat=True
            )
        )
        JobStep.objects.bulk_create(
            JobStep(
                job_id=job_id,
                host=host,
                number=step,
                action=action,
                status=HostStatus.RUNNING,
                started_at=at,
                seq=seq + len(hosts) + n,
            )
            for n, host in enumerate(hosts)
            if host not in begun
        )


@fresh_connection
def save_output(job_id: int, chunks: list[tuple[str, int, str, str]]) -> None:
    with transaction.atomic():
        seq = _take_seqs(job_id, len(chunks))
        if seq is None:
            return
        JobOutput.objects.bulk_create(
            JobOutput(job_id=job_id, host=host, step=step, stream=stream, text=text, seq=seq + n)
            for n, (host, step, stream, text) in enumerate(chunks)
        )


@fresh_connection
def save_step(job_id: int, result: HostResult) -> None:
    with transaction.atomic():
        seq = _take_seqs(job_id)
        if seq is None:
            return
        fields = {
            "action": result.action,
            "status": result.status,
            "rc": result.rc,
            "stdout": result.stdout,
            "stderr": result.stderr,
            "truncated": result.truncated,
            "duration": result.duration,
            "seq": seq,
        }
        if result.started:
            fields["started_at"] = datetime.fromtimestamp(result.started, UTC)
        step = {"job_id": job_id, "host": result.host, "number": result.step}
        if not JobStep.objects.filter(**step).update(**fields):  # its start was announced
            JobStep.objects.create(**step, **fields)
        JobOutput.objects.filter(job_id=job_id, host=result.host, step=result.step).delete()


@fresh_connection
def cut_step(job_id: int, host: str, step: int, status: str, note: str) -> None:
    with transaction.atomic():
        seq = _take_seqs(job_id)
        if seq is not None:
            _cut(JobStep.objects.filter(job_id=job_id, host=host, number=step), status, note, seq)


def _cut(steps: QuerySet[JobStep], status: str, note: str, seq: int) -> int:
    """End running ``steps`` with what they printed live and ``note``; how many."""
    cut = 0
    now = timezone.now()
    for row in steps.filter(status=HostStatus.RUNNING):
        printed = JobOutput.objects.filter(job_id=row.job_id, host=row.host, step=row.number)
        text: dict[str, list[str]] = {"stdout": [], "stderr": []}
        for stream, piece in printed.order_by("seq").values_list("stream", "text"):
            text[stream].append(piece)
        stderr = "".join(text["stderr"])
        row.status, row.stdout = status, "".join(text["stdout"])
        row.stderr = f"{stderr}\n[{note}]" if stderr else f"[{note}]"
        row.duration = (now - row.started_at).total_seconds() if row.started_at else 0.0
        row.seq = seq + cut
        row.save(update_fields=["status", "stdout", "stderr", "duration", "seq"])
        printed.delete()
        cut += 1
    return cut


@fresh_connection
def finish_hosts(job_id: int, ends: list[tuple[str, str, str]]) -> None:
    with transaction.atomic():
        seq = _take_seqs(job_id, len(ends))
        if seq is not None:
            for n, (host, status, error) in enumerate(ends):
                _finish_host(job_id, host, status, error, seq + n)


def _finish_host(job_id: int, host: str, status: str, error: str, seq: int) -> None:
    """The host's row, derived from its steps: the return code of the step that
    decided (the first not ok, else the last), its time from first start to last
    end, and whether any step's output was cut."""
    steps = list(
        JobStep.objects.filter(job_id=job_id, host=host)
        .order_by("number")
        .values("status", "rc", "truncated", "started_at", "duration")
    )
    deciding = next((s for s in steps if s["status"] != HostStatus.OK), steps[-1] if steps else {})
    starts = [s["started_at"] for s in steps if s["started_at"]]
    ends = [s["started_at"] + timedelta(seconds=s["duration"]) for s in steps if s["started_at"]]
    fields = {
        "status": status,
        "rc": deciding.get("rc"),
        "error": error,
        "duration": (max(ends) - min(starts)).total_seconds() if starts else 0.0,
        "truncated": any(s["truncated"] for s in steps),
        "seq": seq,
        "updated_at": timezone.now(),
    }
    if not JobHost.objects.filter(job_id=job_id, host=host).update(**fields):  # never ran
        JobHost.objects.create(job_id=job_id, host=host, **fields)


@fresh_connection
def finish_job(job_id: int, status: str, error: str = "", rollout_stop: str = "") -> None:
    """Close the job and link it into the chain of job records, in one transaction.

    A job already closed (interrupted by a shutdown while its worker still ran)
    keeps its first ending.
    """
    ensure_heads([JOBS_SCOPE])
    with transaction.atomic():
        closed = Job.objects.filter(pk=job_id, status__in=ACTIVE_STATUSES).update(
            status=status,
            error=error,
            rollout_stop=rollout_stop,
            finished_at=timezone.now(),
            order="",
        )
        if closed:
            JobClaim.objects.filter(job_id=job_id, part=None).delete()
            link_job(job_id)


@fresh_connection
def finish_part(part_id: int, status: str, error: str = "", rollout_stop: str = "") -> None:
    """Close a zone's part of a job, and the job once no part is left running."""
    _close_part(JobPart.objects.filter(pk=part_id), status, error, rollout_stop)


def fail_unclaimed_part(part_id: int, reason: str) -> None:
    """The web's word for a part no daemon took: each of its hosts failed, with the reason.

    A part its daemon claimed after all (an answer lost on the way) is left to it.
    """
    part = JobPart.objects.filter(pk=part_id, daemon="")
    _close_part(part, JobStatus.FAILED, reason, "", failed_hosts=True)


@fresh_connection
def fail_undelivered_parts(older_than: timedelta, reason: str) -> int:
    """Close the parts of web jobs that no daemon took within ``older_than``.

    The web creates a job's parts, then sends them; a web worker killed in
    between (a reload, harakiri, the OOM killer) would leave them queued forever.
    """
    cutoff = timezone.now() - older_than
    undelivered = list(
        JobPart.objects.filter(
            daemon="", status=JobStatus.QUEUED, job__created_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    for part_id in undelivered:
        fail_unclaimed_part(part_id, reason)
    return len(undelivered)


def _close_part(
    part: QuerySet[JobPart], status: str, error: str, rollout_stop: str, failed_hosts: bool = False
) -> None:
    ensure_heads([JOBS_SCOPE])
    with transaction.atomic():
        job_id = part.values_list("job_id", flat=True).first()
        if job_id is None:
            return
        # The job row's lock orders the parts' endings: exactly one of them closes the job.
        job = Job.objects.select_for_update().get(pk=job_id)
        hosts = part.values_list("hosts", flat=True).get()
        closed = part.filter(status__in=ACTIVE_STATUSES).update(
            status=status,
            error=error,
            rollout_stop=rollout_stop,
            finished_at=timezone.now(),
            order="",
        )
        if not closed:
            return
        JobClaim.objects.filter(part__in=part).delete()
        if failed_hosts:
            finish_hosts(job_id, [(host, HostStatus.FAILED, error) for host in hosts])
        if not job.parts.filter(status__in=ACTIVE_STATUSES).exists():
            parts = list(job.parts.order_by("zone"))
            ok_hosts = job.results.filter(status=HostStatus.OK).count()
            Job.objects.filter(pk=job_id).update(
                status=final_status(ok_hosts, len(job.targets), {p.status for p in parts}),
                error="; ".join(p.error for p in parts if p.error),
                rollout_stop="; ".join(p.rollout_stop for p in parts if p.rollout_stop),
                finished_at=timezone.now(),
            )
            link_job(job_id)


def link_job(job_id: int) -> None:
    """Append a finished job to the chain of job records (inside the caller's transaction).

    Jobs finish in many threads and daemons at once: the locked chain head row
    makes them take positions one at a time, in commit order.
    """
    head = locked_heads([JOBS_SCOPE])[JOBS_SCOPE]
    if Job.objects.filter(pk=job_id, chain_pos__isnull=False).exists():
        return
    _settle(job_id)
    pos = head.length + 1
    key, digest = sign(keyring(), head.last_hash, job_content(job_id, pos))
    Job.objects.filter(pk=job_id).update(
        chain_pos=pos, prev_hash=head.last_hash, chain_hash=digest, chain_key=key
    )
    ChainHead.objects.filter(pk=head.pk).update(length=pos, last_hash=digest)


def _settle(job_id: int) -> None:
    """Nothing of a job that ends stays running: steps its daemon could no longer end
    (a shutdown, a crash) keep what they printed, and their hosts fail, saying why."""
    running_steps = JobStep.objects.filter(job_id=job_id, status=HostStatus.RUNNING)
    running_hosts = list(
        JobHost.objects.filter(job_id=job_id, status=HostStatus.RUNNING).values_list(
            "host", flat=True
        )
    )
    count = running_steps.count() + len(running_hosts)
    if not count:
        return
    job = Job.objects.filter(pk=job_id).values("status", "error").get()
    reason = f"the job ended ({job['status']}) while this ran" + (
        f": {job['error']}" if job["error"] else ""
    )
    # Interrupted (its daemon stopped, nobody adopted it): what the host did is not known.
    unknown = job["status"] == JobStatus.INTERRUPTED
    status = HostStatus.UNKNOWN if unknown else HostStatus.FAILED
    seq = _take_seqs(job_id, count, closed_too=True)
    seq += _cut(running_steps, status, reason, seq)
    for n, host in enumerate(running_hosts):
        _finish_host(job_id, host, status, reason, seq + n)


@fresh_connection
def interrupt_unfinished(daemon: str, instance: str, reason: str, keep: Iterable[int] = ()) -> int:
    """Mark what daemon ``instance`` ran interrupted (at its start), but the jobs it adopts
    (``keep``), and what its queue (``daemon``) holds that no daemon could run: running
    without a claim, or queued without an order."""
    ensure_heads([JOBS_SCOPE])
    kept = list(keep)
    mine = JobClaim.objects.filter(instance=instance).exclude(job_id__in=kept)
    lost = Q(daemon=daemon) & (
        Q(status=JobStatus.RUNNING, claims=None) | Q(status=JobStatus.QUEUED, order="")
    )
    with transaction.atomic():
        jobs = Job.objects.select_for_update().filter(
            lost | Q(pk__in=mine.filter(part=None).values("job_id")),
            status__in=ACTIVE_STATUSES,
        )
        parts = JobPart.objects.filter(
            lost | Q(pk__in=mine.values("part_id")), status__in=ACTIVE_STATUSES
        ).exclude(job_id__in=kept)
        interrupted = list(jobs.exclude(pk__in=kept).values_list("pk", flat=True))
        Job.objects.filter(pk__in=interrupted).update(
            status=JobStatus.INTERRUPTED, error=reason, finished_at=timezone.now(), order=""
        )
        JobClaim.objects.filter(job_id__in=interrupted, part=None).delete()
        for job_id in interrupted:  # an ended job is a record like any other: chain it
            link_job(job_id)
        part_ids = list(parts.values_list("pk", flat=True))
    for part_id in part_ids:
        finish_part(part_id, JobStatus.INTERRUPTED, reason)
    return len(interrupted) + len(part_ids)


REPLAYED_KEPT = timedelta(days=7)  # notes of replayed writes are kept this long
PRUNE_EVERY = 3600.0  # seconds between deletions of older notes
_pruned = float("-inf")


@fresh_connection
def replay(writes: list[tuple[str, str, tuple[Any, ...]]]) -> None:
    """Writes from a daemon's spool, each once: skipped when its key is noted already."""
    if any(name in ("finish_job", "finish_part") for _, name, _ in writes):
        ensure_heads([JOBS_SCOPE])  # outside the transaction: see ensure_heads
    with transaction.atomic():
        keys = [key for key, _, _ in writes]
        noted = set(ReplayedWrite.objects.filter(key__in=keys).values_list("key", flat=True))
        for key, name, args in writes:
            if key not in noted:
                _REPLAYABLE[name](*args)
        ReplayedWrite.objects.bulk_create(ReplayedWrite(key=k) for k in keys if k not in noted)
    global _pruned
    if time.monotonic() - _pruned > PRUNE_EVERY:  # now and then, forget the old notes
        _pruned = time.monotonic()
        ReplayedWrite.objects.filter(at__lt=timezone.now() - REPLAYED_KEPT).delete()


@fresh_connection
def check() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


@fresh_connection
def job_state(job_id: int, after: int = 0) -> dict[str, Any] | None:
    """Status, and the hosts, steps and live output written after ``after``, as plain
    JSON data (see :func:`omserverweb.jobs.queries.job_changes`)."""
    job = (
        Job.objects.filter(pk=job_id)
        .values(
            "id",
            "module_id",
            "status",
            "error",
            "rollout_stop",
            "targets",
            "requested_by",
            "client",
            "created_at",
            "started_at",
            "finished_at",
        )
        .first()
    )
    if job is None:
        return None
    for key in ("created_at", "started_at", "finished_at"):
        job[key] = job[key].isoformat() if job[key] else None
    job["module"] = job.pop("module_id")
    job.update(job_changes(job_id, after))
    return job


# What a daemon may replay from its spool (the writes DurableRecorder keeps).
_REPLAYABLE: dict[str, Callable[..., None]] = {
    f.__name__: f
    for f in (
        start_step,
        save_output,
        save_step,
        cut_step,
        finish_hosts,
        finish_job,
        finish_part,
    )
}
