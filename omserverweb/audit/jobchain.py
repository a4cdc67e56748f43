"""What of a job record the chain covers, and the check of the job chain."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from itertools import islice
from typing import Any

from omserver.vocabulary import ACTIVE_STATUSES
from omserverweb.audit.chain import JOBS_SCOPE, Problem, verify_chain
from omserverweb.audit.models import ChainHead
from omserverweb.jobs.models import Job, JobHost

JOB_FIELDS = (
    "id",
    "module_id",
    "requested_by",
    "client",
    "targets",
    "params",
    "status",
    "error",
    "rollout_stop",
    "created_at",
    "started_at",
    "finished_at",
)
RESULT_FIELDS = ("host", "status", "rc", "stdout", "stderr", "truncated")


def job_content(job_id: int, pos: int) -> list[Any]:
    """The job as stored, with every host's result, as the chain hashes it."""
    job = Job.objects.filter(pk=job_id).values_list(*JOB_FIELDS).get()
    results = JobHost.objects.filter(job_id=job_id).order_by("host")
    return [*job, [list(r) for r in results.values_list(*RESULT_FIELDS)], pos]


def verify_jobs() -> Problem | None:
    """The first altered, removed or inserted job record, or None."""
    head = ChainHead.objects.filter(scope=JOBS_SCOPE).first()
    problem = verify_chain(head, JOBS_SCOPE, _linked_jobs())
    if problem:
        return problem
    stray = (
        Job.objects.filter(chain_pos__isnull=True)
        .exclude(status__in=ACTIVE_STATUSES)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    if stray is not None:  # every ended job is linked as it ends
        return Problem(JOBS_SCOPE, stray, 0, "a finished job outside the chain (inserted)")
    return None


def _linked_jobs(batch: int = 500) -> Iterator[tuple[int, int, str, str, list[Any]]]:
    """Each linked job as :func:`job_content` sees it, read ``batch`` jobs per query."""
    linked = (
        Job.objects.filter(chain_pos__isnull=False)
        .order_by("chain_pos")
        .values_list("id", "chain_pos", "prev_hash", "chain_hash", *JOB_FIELDS)
    )
    jobs = linked.iterator(chunk_size=batch)
    while chunk := list(islice(jobs, batch)):
        results = defaultdict(list)
        rows = JobHost.objects.filter(job_id__in=[job[0] for job in chunk]).order_by("host")
        for job_id, *result in rows.values_list("job_id", *RESULT_FIELDS):
            results[job_id].append(result)
        for job_id, pos, prev, digest, *job in chunk:
            yield job_id, pos, prev, digest, [*job, results[job_id], pos]
