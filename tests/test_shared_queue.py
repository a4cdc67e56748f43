"""Two daemons of one zone share its queue: either runs what was queued through the other.

Real daemons on the SSH lab with the same ``daemon.name`` and queue key, one
worker each, recording into the test MariaDB. They take jobs from the record
(claimed under a row lock, one at a time), an exclusive module never runs twice
at once on a host whichever daemon runs it, a cancel asked of one reaches the
other, and a restart of one leaves the other's jobs alone.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import pytest
from django.conf import settings

from omserver.client import Client
from omserver.jobs.orders import KEY_FILE, queue_cipher
from omserverweb.jobs.models import Job
from tests.daemon_process import RunningDaemon, running_daemon
from tests.lab.fixtures import modules_folder
from tests.lab.procs import wait_for

pytestmark = [
    pytest.mark.ssh,
    pytest.mark.usefixtures("transactional_db"),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
        reason="daemons share a queue on MariaDB (SQLite: one daemon)",
    ),
]

SLEEP, EXCLUSIVE_SLEEP = 9101, 9102
LONG = 180  # seconds: deadlines generous enough for a busy machine


@pytest.fixture
def zone(ssh_lab, tmp_path: Path, test_database_url: str) -> Iterator[dict]:
    """Two daemons named alike, sharing the queue key: ``a`` and ``b``."""
    folders = {name: tmp_path / name / "var" for name in ("a", "b")}
    queue_cipher(folders["a"])
    folders["b"].mkdir(parents=True)
    shutil.copy(folders["a"] / KEY_FILE, folders["b"] / KEY_FILE)
    env = {
        **ssh_lab.settings(),
        "OMSERVER_DAEMON_MODULES_DIR": str(modules_folder(tmp_path)),
        "OMSERVER_DAEMON_NAME": "zone-shared",
        "OMSERVER_DAEMON_WORKERS": "1",
    }
    setup = {
        "folders": folders,
        "env": env,
        "url": test_database_url,
        "targets": [t.to_dict() for t in ssh_lab.targets],
    }
    with ExitStack() as stack:
        setup["daemons"] = {
            name: stack.enter_context(running_daemon(folder, env, database_url=test_database_url))
            for name, folder in folders.items()
        }
        yield setup


def span(job_id: int) -> tuple[datetime, datetime]:
    job = Job.objects.get(pk=job_id)
    return job.started_at, job.finished_at


def overlap(first: tuple[datetime, datetime], second: tuple[datetime, datetime]) -> bool:
    return first[0] < second[1] and second[0] < first[1]


def ended(client: Client, job_id: int) -> str:
    return client.wait(job_id, LONG, check=False)["status"]


def test_jobs_queued_through_one_daemon_run_on_both(zone) -> None:
    a: RunningDaemon = zone["daemons"]["a"]
    host = zone["targets"][:1]
    with a.client() as client:
        jobs = [client.submit(SLEEP, host, {"seconds": 3}, timeout=LONG) for _ in range(4)]
        assert [ended(client, job_id) for job_id in jobs] == ["succeeded"] * 4
    spans = [span(job_id) for job_id in jobs]
    # One worker each: two of the jobs at once means the second daemon ran one.
    assert any(overlap(x, y) for n, x in enumerate(spans) for y in spans[n + 1 :])


def test_an_exclusive_module_never_runs_twice_at_once_on_a_host_across_daemons(zone) -> None:
    host = zone["targets"][:1]
    jobs = []
    with zone["daemons"]["a"].client() as on_a, zone["daemons"]["b"].client() as on_b:
        for client in (on_a, on_b, on_a, on_b):
            jobs.append(client.submit(EXCLUSIVE_SLEEP, host, {"seconds": 2}, timeout=LONG))
        assert [ended(on_a, job_id) for job_id in jobs] == ["succeeded"] * 4
    spans = sorted(span(job_id) for job_id in jobs)
    assert not any(overlap(x, y) for x, y in itertools.pairwise(spans))


def test_a_cancel_asked_of_one_daemon_stops_the_job_the_other_runs(zone) -> None:
    host = zone["targets"][:1]
    with zone["daemons"]["a"].client() as client:
        busy = client.submit(SLEEP, host, {"seconds": 20}, timeout=LONG)  # a's one worker
        wait_for(lambda: client.job(busy)["status"] == "running", LONG, "a's job running")
        moved = client.submit(SLEEP, host, {"seconds": 60}, timeout=LONG)  # b takes it
        wait_for(lambda: client.job(moved)["status"] == "running", LONG, "b running it")
        assert client.cancel(moved)["status"] in ("running", "cancelled")
        assert ended(client, moved) == "cancelled"
        assert client.job(busy)["status"] == "running"  # the other job goes on
        client.cancel(busy)


def test_a_restart_of_one_daemon_leaves_the_others_jobs_alone(zone) -> None:
    host = zone["targets"][:1]
    with zone["daemons"]["a"].client() as client:
        job_id = client.submit(SLEEP, host, {"seconds": 6}, timeout=LONG)
        wait_for(lambda: client.job(job_id)["status"] == "running", LONG, "the job running")
        runs_on_a = Job.objects.get(pk=job_id).claims.get().instance
        b = zone["daemons"]["b"]
        b.process.terminate()
        b.process.wait(60)
        with running_daemon(zone["folders"]["b"], zone["env"], b.issued, database_url=zone["url"]):
            assert ended(client, job_id) == "succeeded"  # not interrupted by b's start
    assert runs_on_a == (zone["folders"]["a"] / "instance").read_text()
