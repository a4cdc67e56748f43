"""A daemon that stops mid-job (kill -9 or SIGTERM) loses nothing: restarted, it takes over.

Real daemons on the Salt and the SSH lab, recording into the test database. The
job's process outlives its daemon and journals what it does; the restarted
daemon adopts the job from that journal and records every line and result,
then runs what was queued. On Salt, even a job whose process died with the
daemon gets its hosts' real step results, from the master's job cache.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from omserver.client import Client
from omserver.jobs.journal import journal_path
from omserverweb.audit.jobchain import verify_jobs
from omserverweb.jobs.models import Job
from tests.daemon_process import RunningDaemon, running_daemon
from tests.lab.fixtures import modules_folder
from tests.lab.procs import wait_for
from tests.records import hosts_of, steps_of

pytestmark = pytest.mark.usefixtures("transactional_db")

LINES, SLEEP = 9106, 9101
LONG = 180  # seconds: deadlines generous enough for a busy machine
GRACE = 2  # seconds a SIGTERM'd daemon gives running jobs


@pytest.fixture(
    params=[
        pytest.param("saltstack", marks=pytest.mark.salt),
        pytest.param("ansible", marks=pytest.mark.ssh),
    ]
)
def restartable(request, tmp_path: Path, test_database_url: str) -> dict[str, Any]:
    """What starting the same daemon twice takes: its folder, settings and the lab's hosts."""
    lab = request.getfixturevalue("salt_lab" if request.param == "saltstack" else "ssh_lab")
    env = {
        **lab.settings(),
        "OMSERVER_DAEMON_MODULES_DIR": str(modules_folder(tmp_path)),
        "OMSERVER_DAEMON_NAME": f"restart-{request.param}",
        "OMSERVER_DAEMON_WORKERS": "1",  # so that a second job waits in the queue
        "OMSERVER_DAEMON_SHUTDOWN_GRACE": str(GRACE),
    }
    targets = [t.to_dict() for t in lab.targets][:2]
    return {"data_dir": tmp_path / "var", "env": env, "url": test_database_url, "targets": targets}


def start(setup: dict[str, Any], issued: dict[str, str] | None = None):
    return running_daemon(setup["data_dir"], setup["env"], issued, database_url=setup["url"])


def lines(count: int) -> str:
    return "\n".join(f"line {n}" for n in range(1, count + 1))


def first_line_recorded(client: Client, job_id: int) -> None:
    def printed() -> bool:
        state = client.job(job_id)
        return bool(state["output"]) or any(s["stdout"] for s in state["steps"])

    wait_for(printed, LONG, "the job's first line in the record")


def stop_daemon(daemon: RunningDaemon, how: str) -> None:
    if how == "kill":
        os.killpg(daemon.process.pid, signal.SIGKILL)  # the daemon and its forkserver
        daemon.process.wait(10)
        return
    os.kill(daemon.process.pid, signal.SIGTERM)  # as systemd's KillMode=process does
    began = time.monotonic()
    daemon.process.wait(LONG)
    assert time.monotonic() - began < GRACE + 15, "the daemon outstayed its shutdown grace"


@pytest.mark.parametrize("how", ["kill", "term"])
def test_a_daemon_stopped_mid_job_takes_it_over_after_restart(restartable, how: str) -> None:
    count = 12
    with start(restartable) as first, first.client() as client:
        hosts = restartable["targets"]
        running = client.submit(LINES, hosts, {"lines": count, "pause_ms": 500}, timeout=LONG)
        queued = client.submit(SLEEP, hosts, {"seconds": 1}, timeout=LONG)
        first_line_recorded(client, running)
        stop_daemon(first, how)
        issued = first.issued
    assert Job.objects.get(pk=running).status == "running"  # nobody said interrupted
    assert Job.objects.get(pk=queued).status == "queued"
    with start(restartable, issued) as second, second.client() as client:
        state = client.wait(running, LONG, check=False)
        assert state["status"] == "succeeded", state
        for target in hosts:
            steps = steps_of(state, target["hostname"])
            assert [(s["number"], s["status"]) for s in steps] == [(1, "ok")]
            assert steps[0]["stdout"] == lines(count)  # every line once, in order
            assert hosts_of(state)[target["hostname"]]["status"] == "ok"
        assert client.wait(queued, LONG, check=False)["status"] == "succeeded"
        log = second.log()
    assert "BrokenPipeError" not in log and "Traceback" not in log, log
    assert not journal_path(restartable["data_dir"], running).exists()  # recorded: gone
    assert verify_jobs() is None


@pytest.mark.salt
def test_salt_steps_whose_process_died_with_the_daemon_are_read_from_the_job_cache(
    salt_lab, tmp_path: Path, test_database_url: str
) -> None:
    env = {
        **salt_lab.settings(),
        "OMSERVER_DAEMON_MODULES_DIR": str(modules_folder(tmp_path)),
        "OMSERVER_DAEMON_NAME": "restart-cache",
    }
    setup = {"data_dir": tmp_path / "var", "env": env, "url": test_database_url}
    hosts = [t.to_dict() for t in salt_lab.targets][:2]
    with start(setup) as first, first.client() as client:
        job_id = client.submit(LINES, hosts, {"lines": 6, "pause_ms": 500}, timeout=LONG)
        first_line_recorded(client, job_id)
        header = json.loads(journal_path(setup["data_dir"], job_id).read_text().splitlines()[0])
        os.killpg(header[1]["pid"], signal.SIGKILL)  # the job's process: Salt's minions go on
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait(10)
        issued = first.issued
    with start(setup, issued) as second, second.client() as client:
        state = client.wait(job_id, LONG, check=False)
    for target in hosts:
        (step,) = steps_of(state, target["hostname"])
        assert (step["status"], step["rc"], step["stdout"]) == ("ok", 0, lines(6))
        assert "read from Salt's job cache" in step["stderr"]
        # The step is known; whether the module had more to do is not.
        assert hosts_of(state)[target["hostname"]]["status"] == "unknown"
