"""What of a job record the chain covers, and the check of the job chain."""

from __future__ import annotations

from typing import Any

from omserverweb.audit.chain import JOBS_SCOPE, Problem, verify_chain
from omserverweb.audit.models import ChainHead
from omserverweb.jobs.models import HostResult, Job

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
    results = HostResult.objects.filter(job_id=job_id).order_by("host")
    return [*job, [list(r) for r in results.values_list(*RESULT_FIELDS)], pos]


def verify_jobs() -> Problem | None:
    """The first altered or removed job record, or None."""
    head = ChainHead.objects.filter(scope=JOBS_SCOPE).first()
    linked = Job.objects.filter(chain_pos__isnull=False).order_by("chain_pos")
    rows = (
        (job_id, pos, prev, digest, job_content(job_id, pos))
        for job_id, pos, prev, digest in linked.values_list(
            "id", "chain_pos", "prev_hash", "chain_hash"
        ).iterator(chunk_size=500)
    )
    return verify_chain(head, JOBS_SCOPE, rows)
