"""Reading jobs: which a user may see, and what changed in one since a reader's cursor."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from omserverweb.jobs.models import Job, JobHost, JobOutput, JobStep


def visible_jobs(user: AbstractBaseUser) -> QuerySet[Job]:
    jobs = Job.objects.select_related("module")
    if user.has_perm("jobs.view_job"):
        return jobs
    return jobs.filter(requested_by=user.get_username())


HOST_FIELDS = ("host", "status", "rc", "error", "duration", "truncated", "seq")
STEP_FIELDS = (
    "host",
    "number",
    "action",
    "status",
    "rc",
    "stdout",
    "stderr",
    "truncated",
    "started_at",
    "duration",
    "seq",
)
OUTPUT_FIELDS = ("host", "step", "stream", "text", "seq")
ROWS_PER_CALL = 50  # host and step rows in one answer (steps hold up to the output limit)
CHUNKS_PER_CALL = 500  # live output pieces in one answer


def job_changes(job_id: int, after: int = 0) -> dict[str, Any]:
    """What was written about the job's hosts after sequence number ``after``.

    ``results`` (host rows), ``steps`` and ``output`` (live pieces of running
    steps), each in sequence order; ``cursor``, the ``after`` of the next call;
    ``more`` when the answer was cut at its size and the rest should be asked
    for at once. A step's row comes after its live pieces and replaces them.
    """
    tables = [
        ("results", JobHost.objects, HOST_FIELDS, ROWS_PER_CALL),
        ("steps", JobStep.objects, STEP_FIELDS, ROWS_PER_CALL),
        ("output", JobOutput.objects, OUTPUT_FIELDS, CHUNKS_PER_CALL),
    ]
    # Sequence numbers are taken under the job row's lock until commit: every row up to
    # the committed last_seq is visible, a row past it may be mid-commit and is left to
    # the next call (read apart, a step's end could be passed over for good).
    last = Job.objects.filter(pk=job_id).values_list("last_seq", flat=True).first() or 0
    found = {}
    boundary = None  # the first sequence number an answer cut short did not reach
    for key, rows, fields, limit in tables:
        found[key] = list(
            rows.filter(job_id=job_id, seq__gt=after, seq__lte=last)
            .order_by("seq")
            .values(*fields)[: limit + 1]
        )
        if len(found[key]) > limit:
            cut = found[key].pop()["seq"]
            boundary = cut if boundary is None else min(boundary, cut)
    answer: dict[str, Any] = {"more": boundary is not None}
    cursor = after
    for key, rows in found.items():
        kept = [row for row in rows if boundary is None or row["seq"] < boundary]
        for row in kept:
            if row.get("started_at"):
                row["started_at"] = row["started_at"].isoformat()
        cursor = max([cursor, *(row["seq"] for row in kept)])
        answer[key] = kept
    answer["cursor"] = cursor
    return answer
