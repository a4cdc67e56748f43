"""The record survives its database: a real MariaDB of the test's own, killed mid-job.

A daemon on the Salt or the SSH lab records into a private MariaDB server; the
test kills that server (SIGKILL) while a job prints on two hosts, keeps it down
while the job ends, starts it again, and checks that every line and every
result reached the record, once, with no job left running or queued, every
worker alive and the daemon's health saying what it went through.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from omserver.client import Client, DaemonError
from omserver.vocabulary import FINAL_STATUSES
from tests.daemon_process import RunningDaemon, running_daemon
from tests.lab.fixtures import modules_folder
from tests.lab.mariadb import PrivateMariaDB, migrate
from tests.lab.procs import wait_for
from tests.records import hosts_of, steps_of

# The test brings its own MariaDB, whatever the suite's database: once is enough.
pytestmark = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
    reason="runs in the MariaDB pass of the suite (it starts its own MariaDB server)",
)

LINES = 9106
WORKERS = 2
LONG = 180  # seconds: deadlines generous enough for a busy machine


@pytest.fixture(
    params=[
        pytest.param("saltstack", marks=pytest.mark.salt),
        pytest.param("ansible", marks=pytest.mark.ssh),
    ]
)
def recording(
    request: pytest.FixtureRequest, private_mariadb: PrivateMariaDB, tmp_path: Path
) -> Iterator[tuple[RunningDaemon, PrivateMariaDB, list[dict[str, Any]]]]:
    """A daemon on one backend's lab, recording into a MariaDB the test may kill."""
    lab = request.getfixturevalue("salt_lab" if request.param == "saltstack" else "ssh_lab")
    migrate(private_mariadb.url)
    env = {
        **lab.settings(),
        "OMSERVER_DAEMON_MODULES_DIR": str(modules_folder(tmp_path)),
        "OMSERVER_DAEMON_NAME": f"faults-{request.param}",
        "OMSERVER_DAEMON_WORKERS": str(WORKERS),
    }
    with running_daemon(tmp_path / "var", env, database_url=private_mariadb.url) as daemon:
        yield daemon, private_mariadb, [t.to_dict() for t in lab.targets][:2]


def answered(ask) -> Any:
    """What ``ask()`` returns once the daemon can answer it (it may say "unavailable")."""
    found: list[Any] = []

    def attempt() -> bool:
        try:
            found.append(ask())
        except DaemonError:
            return False
        return True

    wait_for(attempt, LONG, "an answer from the daemon", interval=0.5)
    return found[0]


def final_state(client: Client, job_id: int) -> dict[str, Any]:
    state = answered(lambda: client.wait(job_id, 5, check=False))
    while state["status"] not in FINAL_STATUSES:
        state = answered(lambda: client.wait(job_id, 5, check=False))
    return state


def unfinished_jobs(db: PrivateMariaDB) -> int:
    with db.connect() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM jobs_job WHERE status IN ('queued', 'running')")
        return cursor.fetchone()[0]


def output_rows(db: PrivateMariaDB, job_id: int) -> int:
    with db.connect() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM jobs_joboutput WHERE job_id = %s", (job_id,))
        return cursor.fetchone()[0]


@pytest.mark.parametrize("outage", [10, 60])
def test_a_database_killed_mid_job_loses_nothing(recording, outage: int) -> None:
    daemon, db, targets = recording
    lines = 8
    with daemon.client("ops-tool") as client:
        job_id = client.submit(LINES, targets, {"lines": lines, "pause_ms": 500}, timeout=LONG)
        wait_for(lambda: output_rows(db, job_id) > 0, LONG, "the first live lines recorded")
        db.kill()
        # The job goes on and ends while the record is away; the daemon says so meanwhile.
        wait_for(lambda: client.ping()["health"]["spooled"] > 0, LONG, "writes kept in the spool")
        health = client.ping()["health"]
        assert (health["status"], health["database"]) == ("degraded", "unreachable")
        assert any("wait in the spool" in problem for problem in health["problems"])
        with pytest.raises(DaemonError) as refused:
            client.job(job_id)
        assert refused.value.code == "unavailable"
        assert "database" in str(refused.value)
        time.sleep(outage)
        db.start()
        state = final_state(client, job_id)
        assert state["status"] == "succeeded", state
        expected = "\n".join(f"line {n}" for n in range(1, lines + 1))
        for target in targets:
            host = target["hostname"]
            steps = steps_of(state, host)
            assert [(s["number"], s["status"], s["rc"]) for s in steps] == [(1, "ok", 0)]
            assert steps[0]["stdout"] == expected  # every line, once, in order
            assert hosts_of(state)[host]["status"] == "ok"
        wait_for(lambda: client.ping()["health"]["status"] == "ok", LONG, "health to read ok again")
        health = client.ping()["health"]
        assert (health["workers"], health["spooled"], health["database"]) == (WORKERS, 0, "ok")
        # and the daemon goes on working, with no restart
        assert client.run(LINES, targets, {"lines": 1, "pause_ms": 0})["status"] == "succeeded"
    assert unfinished_jobs(db) == 0
    assert "Traceback" not in daemon.log()
