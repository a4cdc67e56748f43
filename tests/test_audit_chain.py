"""Tamper evidence: editing or deleting a stored record makes the check fail and name it."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from omserverweb.audit import ingest, services
from omserverweb.audit.models import CommandEvent
from omserverweb.audit.tokens import TokenCoverage
from omserverweb.jobs import recorder
from omserverweb.jobs.models import Job, JobHost, JobStep

pytestmark = pytest.mark.django_db

COVERAGE = TokenCoverage(frozenset({"web-1", "web-2"}))


def store(host: str, seqs: range) -> None:
    events = [
        {
            "host": host,
            "user": "root",
            "command": f"ls {n}",
            "time": "2026-11-21T10:00:00+00:00",
            "seq": n,
        }
        for n in seqs
    ]
    ingest.store(ingest.parse(json.dumps({"events": events}).encode(), COVERAGE))


def raw_sql(sql: str, *params) -> None:
    """Tamper as an attacker with database access would: behind Django's back."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_an_untouched_chain_verifies() -> None:
    store("web-1", range(1, 6))
    store("web-2", range(1, 3))
    store("web-1", range(6, 8))
    assert services.verify_events() == []
    call_command("audit_verify")


def test_editing_an_event_names_it() -> None:
    store("web-1", range(1, 6))
    store("web-2", range(1, 3))
    victim = CommandEvent.objects.get(host="web-1", seq=3)
    raw_sql("UPDATE audit_commandevent SET command = %s WHERE id = %s", "ls /tmp", victim.pk)
    [problem] = services.verify_events()
    assert (problem.chain, problem.record, problem.reason) == (
        "host:web-1",
        victim.pk,
        "record altered",
    )
    with pytest.raises(CommandError):
        call_command("audit_verify")


def test_deleting_an_event_names_the_gap() -> None:
    store("web-1", range(1, 6))
    victim = CommandEvent.objects.get(host="web-1", seq=3)
    after = CommandEvent.objects.get(host="web-1", seq=4)
    raw_sql("DELETE FROM audit_commandevent WHERE id = %s", victim.pk)
    [problem] = services.verify_events()
    assert (problem.record, problem.position) == (after.pk, victim.chain_pos)
    assert "removed" in problem.reason


def test_deleting_the_last_or_first_event_is_seen() -> None:
    store("web-1", range(1, 4))
    store("web-2", range(1, 4))
    raw_sql("DELETE FROM audit_commandevent WHERE host = 'web-1' AND seq = 3")
    raw_sql("DELETE FROM audit_commandevent WHERE host = 'web-2' AND seq = 1")
    problems = {p.chain: p for p in services.verify_events()}
    assert problems["host:web-1"].reason == "last record(s) removed"
    assert problems["host:web-2"].position == 1


def test_retention_keeps_the_chain_verifiable_from_the_first_kept_record() -> None:
    store("web-1", range(1, 6))
    old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    CommandEvent.objects.filter(seq__lte=3).update(received_at=old)
    call_command("audit_prune", "--days", "30")
    assert sorted(CommandEvent.objects.values_list("seq", flat=True)) == [4, 5]
    assert services.verify_events() == []
    raw_sql("DELETE FROM audit_commandevent WHERE seq = 4")  # the first kept one
    [problem] = services.verify_events()
    assert problem.position == 4


# finish_job closes stale connections as the daemon's threads need: real transactions here.
@pytest.mark.django_db(transaction=True)
def test_finished_jobs_are_chained_and_an_edit_is_named(inventory) -> None:
    ids = []
    for n in range(3):
        job_id = recorder.create_job(module_id=1003, requested_by="alice", client="web")
        JobHost.objects.create(job_id=job_id, host="bbs-01", status="ok")
        JobStep.objects.create(
            job_id=job_id, host="bbs-01", number=1, status="ok", stdout=f"out {n}"
        )
        recorder.finish_job(job_id, "succeeded")
        ids.append(job_id)
    assert list(Job.objects.order_by("chain_pos").values_list("id", flat=True)) == ids
    assert services.verify_all() == []
    raw_sql("UPDATE jobs_jobstep SET stdout = 'forged' WHERE job_id = %s", ids[1])
    [problem] = services.verify_all()
    assert (problem.chain, problem.record, problem.reason) == ("jobs", ids[1], "record altered")


@pytest.mark.django_db(transaction=True)
def test_a_deleted_job_is_named(inventory) -> None:
    ids = []
    for _ in range(3):
        job_id = recorder.create_job(module_id=1003, requested_by="alice", client="web")
        recorder.finish_job(job_id, "succeeded")
        ids.append(job_id)
    raw_sql("DELETE FROM jobs_job WHERE id = %s", ids[1])
    [problem] = services.verify_all()
    assert (problem.chain, problem.record, problem.position) == ("jobs", ids[2], 2)


@pytest.mark.django_db(transaction=True)
def test_a_finished_job_inserted_behind_the_chain_is_named(inventory) -> None:
    for _ in range(2):
        recorder.finish_job(
            recorder.create_job(module_id=1003, requested_by="alice", client="web"), "succeeded"
        )
    running = recorder.create_job(module_id=1003, requested_by="alice", client="web")
    assert services.verify_all() == []  # a job still running is linked when it ends
    forged = Job.objects.create(
        module_id=1003, requested_by="alice", client="web", status="succeeded"
    )
    [problem] = services.verify_all()
    assert (problem.chain, problem.record) == ("jobs", forged.pk)
    assert "outside the chain" in problem.reason
    assert running != forged.pk


def test_an_event_inserted_behind_the_chain_is_named() -> None:
    store("web-1", range(1, 3))
    forged = CommandEvent.objects.create(
        host="web-1", user="root", command="ls", event_time="2026-11-21T10:00:00Z", seq=9
    )
    [problem] = services.verify_events()
    assert (problem.record, problem.reason) == (forged.pk, "record inserted outside the chain")
