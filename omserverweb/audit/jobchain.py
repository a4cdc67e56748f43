"""What of a job record the chain covers, and the check of the job chain."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from itertools import islice
from typing import Any

from omserver.vocabulary import ACTIVE_STATUSES
from omserverweb.audit.chain import JOBS_SCOPE, Problem, Row, verify_chain
from omserverweb.audit.models import ChainHead
from omserverweb.jobs.models import Job, JobHost, JobStep

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
HOST_FIELDS = ("host", "status", "rc", "error", "truncated")
STEP_FIELDS = ("number", "action", "status", "rc", "stdout", "stderr", "truncated")


def job_content(job_id: int, pos: int) -> list[Any]:
    """The job as stored, with every host and each of its steps, as the chain hashes it."""
    return next(_contents([(job_id, pos)]))


def _contents(jobs: list[tuple[int, int]]) -> Iterator[list[Any]]:
    """:func:`job_content` of each ``(job id, chain position)``, read in three queries."""
    ids = [job_id for job_id, _ in jobs]
    rows = {
        job[0]: job
        for job in Job.objects.filter(pk__in=ids).values_list("pk", "record_format", *JOB_FIELDS)
    }
    steps = defaultdict(list)
    for job_id, host, *step in (
        JobStep.objects.filter(job_id__in=ids)
        .order_by("job_id", "host", "number")
        .values_list("job_id", "host", *STEP_FIELDS)
    ):
        steps[job_id, host].append(step)
    hosts = defaultdict(list)
    for job_id, *row in (
        JobHost.objects.filter(job_id__in=ids)
        .order_by("job_id", "host")
        .values_list("job_id", *HOST_FIELDS)
    ):
        host_steps = steps[job_id, row[0]]
        if rows[job_id][1] == 1:
            hosts[job_id].append(_recorded_before_steps(row, host_steps))
        else:
            hosts[job_id].append([*row, host_steps])
    for job_id, pos in jobs:
        _, _, *job = rows[job_id]
        yield [*job, hosts[job_id], pos]


def _recorded_before_steps(host: list[Any], steps: list[list[Any]]) -> list[Any]:
    """A host of a job recorded before steps, as the chain hashed it then: its one result
    (now its step 1) or, for a host not run, the reason it gave as stderr."""
    name, status, rc, error, truncated = host
    if steps:
        _, _, _, _, stdout, stderr, _ = steps[0]
        return [name, status, rc, stdout, stderr, truncated]
    return [name, status, rc, "", error, truncated]


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


def _linked_jobs(batch: int = 500) -> Iterator[Row]:
    """Each linked job as :func:`job_content` sees it, read ``batch`` jobs at a time."""
    linked = (
        Job.objects.filter(chain_pos__isnull=False)
        .order_by("chain_pos")
        .values_list("id", "chain_pos", "prev_hash", "chain_hash", "chain_key")
    )
    jobs = linked.iterator(chunk_size=batch)
    while chunk := list(islice(jobs, batch)):
        contents = _contents([(job_id, pos) for job_id, pos, *_ in chunk])
        for link, content in zip(chunk, contents, strict=True):
            yield *link, content
