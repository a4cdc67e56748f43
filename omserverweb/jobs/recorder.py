"""How the daemon writes the record of truth: one job row, one row per host.

Every function here is called from the daemon's worker threads; each write is
its own short transaction so the console sees results as they arrive.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import close_old_connections, transaction
from django.utils import timezone

from omserverweb.audit.chain import JOBS_SCOPE, ensure_heads, link_hash, locked_heads
from omserverweb.audit.jobchain import job_content
from omserverweb.audit.models import ChainHead
from omserverweb.inventory.models import Server
from omserverweb.jobs.models import ACTIVE_STATUSES, HostResult, Job, JobStatus
from omserverweb.modules.models import ModuleDefinition


def ensure_module(module_id: int, name: str, caption: str, schema: list, backends: list) -> None:
    """A Mid_ file run before anyone defined it in the console gets a definition."""
    ModuleDefinition.objects.get_or_create(
        pk=module_id,
        defaults={"name": name, "caption": caption, "params_schema": schema, "backends": backends},
    )


def inventory_targets(hostnames: list[str]) -> dict[str, dict[str, Any]]:
    """Targets named only by hostname, completed from the inventory's enabled servers."""
    servers = Server.objects.filter(hostname__in=hostnames, enabled=True)
    return {s.hostname: s.as_target() for s in servers}


def create_job(**fields: Any) -> int:
    return Job.objects.create(status=JobStatus.QUEUED, **fields).pk


def mark_running(job_id: int) -> None:
    Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now()
    )


def save_result(job_id: int, seq: int, result: Any, *, first: bool) -> None:
    """Write the host's row: inserted on its ``first`` result, replaced after that.

    ``seq`` rises with every write of the job, for readers that poll "after N".
    """
    fields = {
        "status": result.status,
        "rc": result.rc,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "duration": result.duration,
        "truncated": result.truncated,
        "seq": seq,
    }
    if first:
        HostResult.objects.create(job_id=job_id, host=result.host, **fields)
    else:
        HostResult.objects.filter(job_id=job_id, host=result.host).update(
            updated_at=timezone.now(), **fields
        )


def finish_job(job_id: int, status: str, error: str = "", rollout_stop: str = "") -> None:
    """Close the job and link it into the chain of job records, in one transaction."""
    ensure_heads([JOBS_SCOPE])
    with transaction.atomic():
        Job.objects.filter(pk=job_id).update(
            status=status,
            error=error,
            rollout_stop=rollout_stop,
            finished_at=timezone.now(),
        )
        link_job(job_id)
    close_old_connections()


def link_job(job_id: int) -> None:
    """Append a finished job to the chain of job records (inside the caller's transaction).

    Jobs finish in many threads and daemons at once: the locked chain head row
    makes them take positions one at a time, in commit order.
    """
    head = locked_heads([JOBS_SCOPE])[JOBS_SCOPE]
    if Job.objects.filter(pk=job_id, chain_pos__isnull=False).exists():
        return
    pos = head.length + 1
    digest = link_hash(head.last_hash, job_content(job_id, pos))
    Job.objects.filter(pk=job_id).update(chain_pos=pos, prev_hash=head.last_hash, chain_hash=digest)
    ChainHead.objects.filter(pk=head.pk).update(length=pos, last_hash=digest)


def interrupt_unfinished(daemon: str, reason: str, job_ids: Iterable[int] | None = None) -> int:
    """Mark this daemon's queued/running jobs interrupted (at start-up or shutdown)."""
    ensure_heads([JOBS_SCOPE])
    with transaction.atomic():
        jobs = Job.objects.select_for_update().filter(daemon=daemon, status__in=ACTIVE_STATUSES)
        if job_ids is not None:
            jobs = jobs.filter(pk__in=list(job_ids))
        interrupted = list(jobs.values_list("pk", flat=True))
        Job.objects.filter(pk__in=interrupted).update(
            status=JobStatus.INTERRUPTED, error=reason, finished_at=timezone.now()
        )
        for job_id in interrupted:  # an ended job is a record like any other: chain it
            link_job(job_id)
    return len(interrupted)


def job_state(job_id: int, after: int = 0) -> dict[str, Any] | None:
    """Status and the host rows written after ``after``, as plain JSON data."""
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
    rows = list(
        HostResult.objects.filter(job_id=job_id, seq__gt=after)
        .order_by("seq")
        .values("host", "status", "rc", "stdout", "stderr", "duration", "truncated", "seq")
    )
    for key in ("created_at", "started_at", "finished_at"):
        job[key] = job[key].isoformat() if job[key] else None
    job["module"] = job.pop("module_id")
    job["results"] = rows
    job["cursor"] = rows[-1]["seq"] if rows else after
    return job
