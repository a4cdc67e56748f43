"""Jobs recorded before steps: after the migration each host's one result is its step 1,
a host not run keeps its reason, and the job chain still verifies."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from omserverweb.audit.chain import GENESIS, JOBS_SCOPE, ensure_heads, unkeyed_hash
from omserverweb.audit.jobchain import JOB_FIELDS, verify_jobs
from omserverweb.audit.models import ChainHead
from omserverweb.jobs import recorder
from omserverweb.jobs.models import Job, JobHost, JobStep
from omserverweb.modules.models import ModuleDefinition

BEFORE_STEPS = ("jobs", "0005_host_status_not_run")
OLD_RESULT_FIELDS = ("host", "status", "rc", "stdout", "stderr", "truncated")


def migrate(*targets: tuple[str, str]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(list(targets) or executor.loader.graph.leaf_nodes())
    return executor


@pytest.mark.django_db(transaction=True)
def test_results_recorded_before_steps_become_step_one_and_the_chain_verifies() -> None:
    ModuleDefinition.objects.create(id=1003, name="View OS version")
    old = migrate(BEFORE_STEPS).loader.project_state([BEFORE_STEPS]).apps
    old_jobs, old_hosts = old.get_model("jobs", "Job"), old.get_model("jobs", "JobHost")
    now = timezone.now()
    job = old_jobs.objects.create(
        module_id=1003,
        requested_by="alice",
        client="web",
        targets=["www-01", "www-02"],
        status="cancelled",
        started_at=now,
        finished_at=now,
        last_seq=2,
    )
    old_hosts.objects.create(
        job=job, host="www-01", status="ok", rc=0, stdout="Debian 12", duration=1.5, seq=1
    )
    old_hosts.objects.create(
        job=job, host="www-02", status="not_run", stderr="not run: cancelled", seq=2
    )
    # Chained as the record was hashed before steps existed.
    ensure_heads([JOBS_SCOPE])
    content = [
        *old_jobs.objects.filter(pk=job.pk).values_list(*JOB_FIELDS).get(),
        [
            list(row)
            for row in old_hosts.objects.filter(job=job)
            .order_by("host")
            .values_list(*OLD_RESULT_FIELDS)
        ],
        1,
    ]
    digest = unkeyed_hash(GENESIS, content)
    old_jobs.objects.filter(pk=job.pk).update(chain_pos=1, prev_hash=GENESIS, chain_hash=digest)
    ChainHead.objects.filter(scope=JOBS_SCOPE).update(length=1, last_hash=digest)

    migrate()

    assert verify_jobs() is None
    head = ChainHead.objects.get(scope=JOBS_SCOPE)  # the link stays unkeyed, and sealed so
    assert (head.legacy_length, head.legacy_hash, len(head.seal)) == (1, digest, 64)
    assert Job.objects.get(pk=job.pk).record_format == 1
    [step] = JobStep.objects.filter(job_id=job.pk)
    assert (step.host, step.number, step.status, step.rc, step.stdout, step.duration) == (
        "www-01",
        1,
        "ok",
        0,
        "Debian 12",
        1.5,
    )
    not_run = JobHost.objects.get(job_id=job.pk, host="www-02")
    assert (not_run.status, not_run.error) == ("not_run", "not run: cancelled")
    state = recorder.job_state(job.pk)
    assert [s["stdout"] for s in state["steps"]] == ["Debian 12"]
    JobStep.objects.filter(pk=step.pk).update(stdout="forged")
    assert verify_jobs().reason == "record altered"  # the old format is still covered


@pytest.mark.django_db(transaction=True)
def test_a_job_recorded_with_steps_is_chained_with_them() -> None:
    ModuleDefinition.objects.create(id=1003, name="View OS version")
    job_id = recorder.create_job(
        module_id=1003, requested_by="alice", client="web", daemon="d", order="sealed"
    )
    assert recorder.claim(job_id, None, "d", "instance", []) == "ok"
    recorder.start_step(job_id, 1, "echo one", ["www-01"], timezone.now().timestamp())
    recorder.save_output(job_id, [("www-01", 1, "stdout", "one\n")])
    recorder.cut_step(job_id, "www-01", 1, "cancelled", "cancelled")
    recorder.finish_hosts(job_id, [("www-01", "cancelled", "cancelled")])
    recorder.finish_job(job_id, "cancelled")
    assert Job.objects.get(pk=job_id).record_format == 2
    step = JobStep.objects.get(job_id=job_id)
    assert (step.status, step.stdout, step.stderr) == ("cancelled", "one\n", "[cancelled]")
    assert verify_jobs() is None
    JobStep.objects.filter(pk=step.pk).update(action="echo two")
    assert verify_jobs().reason == "record altered"
