"""The job engine through a real daemon, real rpyc, real Salt and Ansible, real database.

Each test talks to a ``python -m omserver serve`` process as any client would
and then reads the record of truth the daemon wrote into the test database.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import rpyc

from omserver.client import Client, InvalidParameters, InvalidRequest, UnknownModule
from omserver.protocol import wire
from omserverweb.audit.jobchain import verify_jobs
from omserverweb.jobs.models import Job, JobHost, JobStep
from tests.daemon_process import RunningDaemon, running_daemon
from tests.lab.fixtures import modules_folder
from tests.lab.procs import wait_for
from tests.records import stdout_of, steps_of

pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture
def client(lab_daemon) -> Iterator[Client]:
    daemon, _ = lab_daemon
    with daemon.client("ops-tool") as client:
        yield client


@pytest.fixture
def targets(lab_daemon) -> list[dict]:
    return lab_daemon[1]


def wait_until_running(client: Client, job_id: int) -> None:
    wait_for(lambda: client.job(job_id)["status"] == "running", 30, f"job {job_id} to run")


def test_run_returns_each_hosts_result_and_records_who_asked(client, targets) -> None:
    state = client.run(1003, targets, requested_by="alice", timeout=60)
    first_line = Path("/etc/issue").read_text().splitlines()[0]
    assert state["status"] == "succeeded"
    assert {
        r["host"]: (r["status"], stdout_of(state, r["host"]).strip()) for r in state["results"]
    } == {t["hostname"]: ("ok", first_line) for t in targets}
    job = Job.objects.get(pk=state["id"])
    assert (job.requested_by, job.client, job.status) == ("alice", "ops-tool", "succeeded")
    assert job.targets == [t["hostname"] for t in targets]
    assert job.started_at <= job.finished_at
    rows = JobHost.objects.filter(job=job)
    assert sorted(r.host for r in rows) == sorted(t["hostname"] for t in targets)
    assert all(r.rc == 0 for r in rows)
    steps = JobStep.objects.filter(job=job)
    assert all(s.number == 1 and s.stdout.strip() == first_line for s in steps)
    assert {s.action for s in steps} == {"head -n 1 -- /etc/issue"}


def test_submit_answers_with_the_job_id_before_the_job_ends(client, targets) -> None:
    job_id = client.submit(9101, targets, {"seconds": 3}, timeout=60)
    assert client.job(job_id)["status"] in {"queued", "running"}
    assert Job.objects.filter(pk=job_id).exists()
    state = client.wait(job_id, timeout=60)
    assert state["status"] == "succeeded"
    assert Job.objects.get(pk=job_id).status == "succeeded"


def test_job_with_a_cursor_returns_only_newer_results(client, targets) -> None:
    job_id = client.submit(1003, targets, timeout=60)
    final = client.wait(job_id, timeout=60)
    assert len(final["results"]) == len(targets)
    later = client.job(job_id, cursor=final["cursor"])
    assert later["results"] == []
    assert later["status"] == "succeeded"


def test_cancel_stops_a_running_job(client, targets) -> None:
    job_id = client.submit(9101, targets, {"seconds": 120}, timeout=300)
    wait_until_running(client, job_id)
    client.cancel(job_id)
    state = client.wait(job_id, timeout=30, check=False)
    assert state["status"] == "cancelled"
    assert {r["host"] for r in state["results"]} == {t["hostname"] for t in targets}
    # cancelled as its step was stopped, or not run when the cancel came before it began
    assert {r["status"] for r in state["results"]} <= {"cancelled", "not_run"}
    assert all("cancelled" in r["error"] for r in state["results"])
    assert Job.objects.get(pk=job_id).status == "cancelled"


def test_hosts_a_cancel_kept_from_running_are_listed_with_why(client, targets) -> None:
    """The canary is cancelled as it runs; the host after it never starts, and says so."""
    rollout = {"canary": 1, "max_failure_ratio": 1.0}
    job_id = client.submit(9101, targets, {"seconds": 120}, timeout=300, rollout=rollout)
    wait_until_running(client, job_id)
    client.cancel(job_id)
    state = client.wait(job_id, timeout=30, check=False)
    assert state["status"] == "cancelled"
    results = {r["host"]: r for r in state["results"]}
    assert set(results) == {t["hostname"] for t in targets}
    later = results[targets[1]["hostname"]]
    assert (later["status"], later["error"]) == ("not_run", "not run: cancelled")
    assert steps_of(state, later["host"]) == []


def test_a_client_with_a_short_socket_timeout_still_waits_out_a_longer_job(
    lab_daemon, targets
) -> None:
    daemon, _ = lab_daemon
    key = daemon.add_client("impatient")
    with Client(daemon.address, "impatient", key, timeout=2) as client:
        state = client.run(9101, targets, {"seconds": 5}, timeout=60)
    assert state["status"] == "succeeded"


def test_a_job_past_its_timeout_reads_timeout(client, targets) -> None:
    state = client.run(9101, targets, {"seconds": 120}, timeout=3, check=False)
    assert state["status"] == "timeout"
    assert {r["status"] for r in state["results"]} == {"timeout"}


def test_rollout_stops_after_the_canary_fails(client, targets) -> None:
    canary = targets[0]["hostname"]
    state = client.run(
        9103,
        targets,
        {"fail_on": canary},
        timeout=60,
        check=False,
        rollout={"canary": 1, "batch_size": 1, "max_failure_ratio": 0},
    )
    assert state["status"] == "failed"
    results = {r["host"]: r for r in state["results"]}
    assert results[canary]["status"] == "failed"
    others = [results[t["hostname"]] for t in targets[1:]]  # nobody else was touched
    assert [(r["status"], r["rc"]) for r in others] == [("not_run", None)] * len(others)
    assert all(r["error"].startswith("not run: the rollout stopped after") for r in others)
    assert "canary" in state["rollout_stop"]
    job = Job.objects.get(pk=state["id"])
    assert "1 of 1 hosts failed" in job.rollout_stop
    assert job.rollout == {"canary": 1, "batch_size": 1, "max_failure_ratio": 0.0}


def test_rollout_goes_on_while_failures_stay_under_the_limit(client, targets) -> None:
    last = targets[-1]["hostname"]
    state = client.run(
        9103,
        targets,
        {"fail_on": last},
        timeout=60,
        check=False,
        rollout={"canary": 1, "batch_size": 1, "max_failure_ratio": 0},
    )
    assert state["status"] == "partial"
    assert len(state["results"]) == len(targets)
    assert state["rollout_stop"] == ""


def test_job_processes_are_reused_but_module_state_never_carries_over(client, targets) -> None:
    seen = []
    for _ in range(3):
        state = client.run(9104, targets[:1], timeout=60)
        count, pid = stdout_of(state, targets[0]["hostname"]).split()
        assert count == "1"  # a fresh import of the module for every job
        seen.append(pid)
    assert len(set(seen)) < 3  # a process whose job ended cleanly took the next one


def test_a_module_that_raises_fails_its_hosts_and_the_next_job_runs(client, targets) -> None:
    failed = client.run(9105, targets, timeout=60, check=False)
    assert failed["status"] == "failed"
    assert all("ValueError: this module always fails" in r["error"] for r in failed["results"])
    state = client.run(1003, targets, timeout=60)
    assert state["status"] == "succeeded"


def test_unknown_module_is_refused_and_no_job_exists(client, targets) -> None:
    before = Job.objects.count()
    with pytest.raises(UnknownModule):
        client.submit(4242, targets)
    assert Job.objects.count() == before


def test_parameters_outside_the_schema_are_refused_naming_the_field(client, targets) -> None:
    before = Job.objects.count()
    with pytest.raises(InvalidParameters) as refused:
        client.submit(1001, targets, {"lines": "5; touch /tmp/omserver-canary"})
    assert refused.value.field == "lines"
    with pytest.raises(InvalidRequest):
        client.submit(1003, [{"hostname": "no-such-host"}])
    assert Job.objects.count() == before


# -- one backend is enough for what follows: the engine, not the backend, is under test --


@pytest.fixture
def salt_daemon(salt_lab, tmp_path, test_database_url):
    env = {
        **salt_lab.settings(),
        "OMSERVER_DAEMON_MODULES_DIR": str(modules_folder(tmp_path)),
        "OMSERVER_DAEMON_NAME": "zone-engine",
        "OMSERVER_DAEMON_WORKERS": "6",
        # The lab's short Salt timeouts detect a stopped minion fast; here 2 cores run
        # many jobs at once, and a busy minion must not be taken for a dead one.
        "OMSERVER_SALT_TIMEOUT": "20",
        "OMSERVER_SALT_GATHER_JOB_TIMEOUT": "20",
    }
    return tmp_path / "var", env, test_database_url, [t.to_dict() for t in salt_lab.targets]


@pytest.mark.salt
def test_a_restarted_daemon_is_not_fooled_by_a_frame_captured_before(salt_daemon) -> None:
    data_dir, env, url, targets = salt_daemon
    with running_daemon(data_dir, env, database_url=url) as first:
        captured, _ = seal(first, "submit", {"module": 9101, "targets": targets})
        assert exchange(first, captured)["ok"]  # an eavesdropper keeps this frame
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait(10)
    with running_daemon(data_dir, env, issued=first.issued, database_url=url) as second:
        # The new process has not seen the captured frame's nonce, but it is not fooled.
        jobs_before = Job.objects.count()
        assert exchange(second, captured)["error"]["code"] == "stale"
        assert Job.objects.count() == jobs_before


def seal(daemon: RunningDaemon, op: str, body: dict) -> tuple[bytes, bytes]:
    """A frame sealed by the lab's tool "lab" (its targets are not in the inventory)."""
    key = wire.cipher(wire.decode_key(daemon.issued.get("lab") or daemon.add_client("lab")))
    return wire.seal_request("lab", key, op, body, now=time.time())


def exchange(daemon: RunningDaemon, frame: bytes) -> dict:
    """Send a frame sealed by "lab" as raw rpyc and open the answer; a refusal raises."""
    host, port = wire.parse_address(daemon.address)
    conn = rpyc.connect(host, port)
    try:
        answer = conn.root.exchange(frame)
    finally:
        conn.close()
    key = wire.cipher(wire.decode_key(daemon.issued["lab"]))
    return wire.open_answer(answer, "lab", key, wire.split_request(frame).nonce)


@pytest.mark.salt
def test_sigterm_lets_a_short_job_finish_and_keeps_the_rest_for_the_next_start(
    salt_daemon,
) -> None:
    data_dir, env, url, targets = salt_daemon
    env = {**env, "OMSERVER_DAEMON_SHUTDOWN_GRACE": "4"}
    with running_daemon(data_dir, env, database_url=url) as daemon, daemon.client() as client:
        short = client.submit(9101, targets, {"seconds": 1}, timeout=60)
        long = client.submit(9102, targets, {"seconds": 15}, timeout=300)
        waiting = client.submit(9102, targets, {"seconds": 1}, timeout=300)  # exclusive: queued
        wait_until_running(client, short)
        wait_until_running(client, long)
        assert client.job(waiting)["status"] == "queued"
        os.kill(daemon.process.pid, signal.SIGTERM)  # as systemd's KillMode=process does
        daemon.process.wait(60)
        issued = daemon.issued
    assert Job.objects.get(pk=short).status == "succeeded"
    assert Job.objects.get(pk=long).status == "running"  # its process goes on, journaling
    assert Job.objects.get(pk=waiting).status == "queued"  # asked for: not thrown away
    assert not JobHost.objects.filter(job_id=waiting).exists()
    with running_daemon(data_dir, env, issued, database_url=url) as daemon:
        with daemon.client() as client:
            assert client.wait(long, 120)["status"] == "succeeded"  # adopted, then recorded
            assert client.wait(waiting, 120)["status"] == "succeeded"  # ran after the restart
    assert Job.objects.get(pk=waiting).order == ""  # its sealed order went once it ended
    assert verify_jobs() is None


@pytest.mark.salt
def test_fifty_submits_from_ten_threads_all_finish_and_exclusive_jobs_never_overlap(
    salt_daemon,
) -> None:
    data_dir, env, url, targets = salt_daemon
    host = targets[:1]
    job_ids: list[int] = []
    errors: list[BaseException] = []
    with running_daemon(data_dir, env, database_url=url) as daemon, daemon.client() as client:

        def submit_five(n: int) -> None:
            try:
                for i in range(5):
                    exclusive = (n + i) % 2 == 0
                    module, chosen = (9102, host) if exclusive else (1003, targets)
                    job_ids.append(client.submit(module, chosen, timeout=120))
            except BaseException as exc:  # reported below, with the thread's failure
                errors.append(exc)

        threads = [threading.Thread(target=submit_five, args=(n,)) for n in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(job_ids) == 50
        for job_id in job_ids:
            state = client.wait(job_id, timeout=120, check=False)
            assert state["status"] == "succeeded", state["results"]

    jobs = Job.objects.filter(pk__in=job_ids)
    assert jobs.count() == 50
    assert all(job.results.count() == len(job.targets) for job in jobs)
    exclusive = sorted(jobs.filter(module_id=9102), key=lambda job: job.started_at)
    assert len(exclusive) == 25
    for before, after in itertools.pairwise(exclusive):
        assert before.finished_at <= after.started_at, (before.pk, after.pk)
    # 50 jobs finished by 6 worker threads at once still form one unbroken chain of records
    assert sorted(jobs.values_list("chain_pos", flat=True)) == list(range(1, 51))
    assert verify_jobs() is None


@pytest.mark.salt
def test_the_daemon_outlives_its_database_connections_being_dropped(salt_daemon) -> None:
    """As MySQL does to connections idle past wait_timeout: the next request reconnects."""
    from django.db import connection

    if connection.vendor != "mysql":
        pytest.skip("MariaDB drops idle connections; SQLite has none to drop")
    data_dir, env, url, targets = salt_daemon
    with running_daemon(data_dir, env, database_url=url) as daemon, daemon.client() as client:
        first = client.run(1003, targets, timeout=60)  # an rpyc thread and a worker connect
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM information_schema.processlist"
                " WHERE user = SUBSTRING_INDEX(CURRENT_USER(), '@', 1) AND id <> CONNECTION_ID()"
            )
            for (thread,) in cursor.fetchall():
                cursor.execute(f"KILL CONNECTION {int(thread)}")
        assert client.job(first["id"])["status"] == "succeeded"  # the rpyc thread's
        assert client.run(1003, targets, timeout=60)["status"] == "succeeded"  # a worker's
