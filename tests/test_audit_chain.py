"""Tamper evidence: editing or deleting a stored record makes the check fail and name it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from omserverweb.audit import ingest, services
from omserverweb.audit.chain import (
    EVENT_FIELDS,
    GENESIS,
    ensure_heads,
    event_content,
    host_scope,
    seal_unkeyed,
    unkeyed_hash,
)
from omserverweb.audit.jobchain import job_content
from omserverweb.audit.models import ChainHead, CommandEvent
from omserverweb.audit.tokens import TokenCoverage
from omserverweb.jobs import recorder
from omserverweb.jobs.models import Job, JobHost, JobStep

pytestmark = pytest.mark.django_db

COVERAGE = TokenCoverage(frozenset({"web-1", "web-2"}))


@pytest.fixture(autouse=True)
def own_keys(settings, tmp_path):
    """Chain keys and checkpoints of this test only (a rotation stays here)."""
    settings.AUDIT_CHAIN_KEY_FILE = str(tmp_path / "chain-keys.json")
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "chain-checkpoint.json")


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


# -- keys: a database writer cannot recompute the hashes ----------------------------------


def plain_sha256(prev_hash: str, content: list) -> str:
    """A link's hash as anyone can compute it without a key (and as links were made before)."""
    values = [
        v.astimezone(dt.UTC).isoformat(timespec="microseconds") if isinstance(v, dt.datetime) else v
        for v in [prev_hash, *content]
    ]
    body = json.dumps(
        values, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(body.encode()).hexdigest()


def event_row(event_id: int) -> tuple[str, list]:
    row = CommandEvent.objects.filter(pk=event_id).values_list("prev_hash", *EVENT_FIELDS).get()
    return row[0], list(row[1:])


def test_an_edit_with_the_hashes_recomputed_without_the_key_is_detected() -> None:
    """The attack of issue 15: edit the last event, recompute its hash and the head."""
    store("web-1", range(1, 4))
    last = CommandEvent.objects.get(host="web-1", seq=3)
    raw_sql("UPDATE audit_commandevent SET command = 'ls /nothing-to-see' WHERE id = %s", last.pk)
    digest = plain_sha256(*event_row(last.pk))
    raw_sql("UPDATE audit_commandevent SET chain_hash = %s WHERE id = %s", digest, last.pk)
    raw_sql("UPDATE audit_chainhead SET last_hash = %s WHERE scope = 'host:web-1'", digest)
    [problem] = services.verify_events()
    assert (problem.record, problem.reason) == (last.pk, "record altered")
    with pytest.raises(CommandError):
        call_command("audit_verify")


def test_claiming_a_rewritten_link_was_made_before_the_keys_is_detected() -> None:
    store("web-1", range(1, 4))
    last = CommandEvent.objects.get(host="web-1", seq=3)
    raw_sql("UPDATE audit_commandevent SET command = 'true', chain_key = '' WHERE id = %s", last.pk)
    digest = plain_sha256(*event_row(last.pk))
    raw_sql("UPDATE audit_commandevent SET chain_hash = %s WHERE id = %s", digest, last.pk)
    raw_sql("UPDATE audit_chainhead SET last_hash = %s WHERE scope = 'host:web-1'", digest)
    [problem] = services.verify_events()
    assert problem.reason == "record altered (unkeyed hash where the chain is keyed)"


@pytest.mark.django_db(transaction=True)
def test_a_job_edited_with_its_hash_recomputed_without_the_key_is_detected(inventory) -> None:
    ids = []
    for n in range(2):
        job_id = recorder.create_job(module_id=1003, requested_by="alice", client="web")
        JobHost.objects.create(job_id=job_id, host="bbs-01", status="ok")
        JobStep.objects.create(job_id=job_id, host="bbs-01", number=1, status="ok", stdout=f"{n}")
        recorder.finish_job(job_id, "succeeded")
        ids.append(job_id)
    raw_sql("UPDATE jobs_jobstep SET stdout = 'all fine' WHERE job_id = %s", ids[1])
    job = Job.objects.get(pk=ids[1])
    digest = plain_sha256(job.prev_hash, job_content(job.pk, job.chain_pos))
    raw_sql("UPDATE jobs_job SET chain_hash = %s WHERE id = %s", digest, job.pk)
    raw_sql("UPDATE audit_chainhead SET last_hash = %s WHERE scope = 'jobs'", digest)
    [problem] = services.verify_all()
    assert (problem.chain, problem.record, problem.reason) == ("jobs", job.pk, "record altered")
    with pytest.raises(CommandError):
        call_command("audit_verify")


@pytest.mark.django_db(transaction=True)
def test_rotation_keeps_old_links_verifiable(inventory, settings) -> None:
    store("web-1", range(1, 3))
    recorder.finish_job(
        recorder.create_job(module_id=1003, requested_by="alice", client="web"), "succeeded"
    )
    call_command("chain_rotate_key")
    store("web-1", range(3, 5))
    recorder.finish_job(
        recorder.create_job(module_id=1003, requested_by="alice", client="web"), "succeeded"
    )
    assert services.verify_all() == []
    event_keys = list(CommandEvent.objects.order_by("seq").values_list("chain_key", flat=True))
    job_keys = list(Job.objects.order_by("chain_pos").values_list("chain_key", flat=True))
    old, new = event_keys[0], event_keys[-1]
    assert old != new and event_keys == [old, old, new, new] and job_keys == [old, new]
    path = Path(settings.AUDIT_CHAIN_KEY_FILE)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    data = json.loads(path.read_text())
    assert data["current"] == new
    del data["keys"][old]  # a key lost: its links cannot be vouched for any more
    path.write_text(json.dumps(data))
    problems = services.verify_all()
    assert {p.chain for p in problems} == {"host:web-1", "jobs"}
    assert all(f"key {old!r}, which the key file lacks" in p.reason for p in problems)


def legacy_chain(host: str, seqs: range) -> list[CommandEvent]:
    """Events linked as before the keys (unkeyed sha256), then the migration's seal."""
    ensure_heads([host_scope(host)])
    last, events = GENESIS, []
    for pos, seq in enumerate(seqs, 1):
        event = CommandEvent(
            host=host, user="root", command=f"ls {seq}", seq=seq, chain_pos=pos, prev_hash=last,
            event_time=dt.datetime(2026, 11, 21, 10, tzinfo=dt.UTC),
        )  # fmt: skip
        event.chain_hash = last = unkeyed_hash(last, event_content(vars(event)))
        event.save()
        events.append(event)
    ChainHead.objects.filter(scope=host_scope(host)).update(length=len(events), last_hash=last)
    seal_unkeyed(ChainHead.objects.filter(scope=host_scope(host)))
    return events


def test_links_made_before_the_keys_still_verify_and_new_ones_are_keyed() -> None:
    legacy_chain("web-1", range(1, 4))
    store("web-1", range(4, 6))
    assert services.verify_events() == []
    keys = list(CommandEvent.objects.order_by("seq").values_list("chain_key", flat=True))
    assert keys[:3] == ["", "", ""] and all(keys[3:])


def test_an_unkeyed_part_rewritten_to_its_end_is_detected() -> None:
    """Unkeyed links can be recomputed by anyone: the sealed head says how they ended."""
    events = legacy_chain("web-1", range(1, 4))
    raw_sql("UPDATE audit_commandevent SET command = 'true' WHERE id = %s", events[-1].pk)
    digest = plain_sha256(*event_row(events[-1].pk))
    raw_sql("UPDATE audit_commandevent SET chain_hash = %s WHERE id = %s", digest, events[-1].pk)
    raw_sql("UPDATE audit_chainhead SET last_hash = %s WHERE scope = 'host:web-1'", digest)
    [problem] = services.verify_events()
    assert problem.reason == "record altered (the unkeyed part no longer ends as sealed)"


def test_a_whole_chain_rewritten_as_unkeyed_is_detected() -> None:
    store("web-1", range(1, 3))
    last = GENESIS
    for event in CommandEvent.objects.filter(host="web-1").order_by("chain_pos"):
        raw_sql("UPDATE audit_commandevent SET prev_hash = %s, chain_key = '' WHERE id = %s",
                last, event.pk)  # fmt: skip
        last = plain_sha256(*event_row(event.pk))
        raw_sql("UPDATE audit_commandevent SET chain_hash = %s WHERE id = %s", last, event.pk)
    raw_sql("UPDATE audit_chainhead SET last_hash = %s WHERE scope = 'host:web-1'", last)
    [problem] = services.verify_events()
    assert problem.reason == "record altered (unkeyed hash where the chain is keyed)"
    # ... and so is a head that claims the rewritten links were there before the keys
    raw_sql("UPDATE audit_chainhead SET legacy_length = 2, legacy_hash = %s", last)
    [problem] = services.verify_events()
    assert problem.reason == "chain head's anchor or legacy part altered (no seal)"


def test_cutting_a_chain_s_start_as_retention_would_is_detected() -> None:
    store("web-1", range(1, 5))
    second = CommandEvent.objects.get(host="web-1", seq=2)
    raw_sql("DELETE FROM audit_commandevent WHERE host = 'web-1' AND seq <= 2")
    raw_sql("UPDATE audit_chainhead SET anchor_pos = 3, anchor_hash = %s", second.chain_hash)
    [problem] = services.verify_events()
    assert problem.reason == "chain head's anchor or legacy part altered (no seal)"


# -- checkpoints outside the database: the tail --------------------------------------------


def test_a_cut_tail_passes_the_keys_but_not_the_checkpoint() -> None:
    store("web-1", range(1, 5))
    store("web-2", range(1, 3))
    call_command("audit_verify", "--checkpoint")
    third = CommandEvent.objects.get(host="web-1", seq=3)
    raw_sql("DELETE FROM audit_commandevent WHERE host = 'web-1' AND seq = 4")
    raw_sql("UPDATE audit_chainhead SET length = 3, last_hash = %s WHERE scope = 'host:web-1'",
            third.chain_hash)  # fmt: skip
    raw_sql("DELETE FROM audit_commandevent WHERE host = 'web-2'")  # a whole chain
    raw_sql("DELETE FROM audit_chainhead WHERE scope = 'host:web-2'")
    call_command("audit_verify")  # what is left is consistent
    with pytest.raises(CommandError, match="2 chain"):
        call_command("audit_verify", "--checkpoint")


def test_the_checkpoint_follows_a_growing_chain(settings) -> None:
    store("web-1", range(1, 3))
    call_command("audit_verify", "--checkpoint")
    store("web-1", range(3, 5))
    call_command("audit_verify", "--checkpoint")
    saved = json.loads(Path(settings.AUDIT_CHECKPOINT_FILE).read_text())["chains"]
    assert saved["host:web-1"][0] == 4
