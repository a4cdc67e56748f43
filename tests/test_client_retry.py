"""The CLI through a daemon restart and a database outage: it waits them out, or says
in one line what is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from omserver.client import DaemonError
from tests.conftest import WWW_HOSTS
from tests.daemon_process import RunningDaemon
from tests.lab.mariadb import PrivateMariaDB, migrate
from tests.lab.procs import free_port, stop, wait_for
from tests.test_web_faults import local_daemon, seed

pytestmark = pytest.mark.usefixtures("transactional_db", "inventory")
HOST = WWW_HOSTS[0]


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMSERVER_DAEMON")}
    env["OMSERVER_PATHS_DATA_DIR"] = str(tmp_path / "cli-var")
    return env


def cli_argv(daemon: RunningDaemon, tmp_path: Path, *args: str) -> list[str]:
    """``omserver ARGS`` as the tool "ops-cli", its key in a file."""
    key = daemon.issued.get("ops-cli") or daemon.add_client("ops-cli")
    key_file = tmp_path / "ops-cli.key"
    key_file.write_text(key)
    return [
        sys.executable,
        "-m",
        "omserver",
        *args,
        "--address",
        daemon.address,
        "--client-id",
        "ops-cli",
        "--key-file",
        str(key_file),
    ]


@pytest.fixture
def omserver(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(daemon: RunningDaemon, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cli_argv(daemon, tmp_path, *args),
            env=cli_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


class Reader:
    """A child's output, read as it comes, so a test can wait on a line."""

    def __init__(self, stream) -> None:
        self.text = ""
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.text += line

    def join(self) -> str:
        self._thread.join(10)
        return self.text


def test_run_keeps_following_its_job_across_a_daemon_restart(
    tmp_path: Path, test_database_url: str
) -> None:
    address = f"127.0.0.1:{free_port()}"
    folder = tmp_path / "daemon"
    with local_daemon(folder, test_database_url, address) as daemon:
        issued = daemon.issued
        argv = cli_argv(daemon, tmp_path, "run", "9101", "--hosts", HOST, "--param", "seconds=4")
        run = subprocess.Popen(
            argv, env=cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            out, err = Reader(run.stdout), Reader(run.stderr)
            wait_for(lambda: out.text or run.poll() is not None, 60, "the job's first line")
            assert out.text.startswith("job "), (out.text, err.join(), daemon.log()[-3000:])
            job_id = int(out.text.split()[1].rstrip(":"))
            with daemon.client("ops-cli") as client:
                wait_for(lambda: client.job(job_id)["status"] == "running", 60, "the job running")
            stop(daemon.process, grace=5)
            wait_for(lambda: "still trying" in err.text, 30, "the CLI saying it waits")
            assert run.poll() is None, err.text  # it did not give up
            with local_daemon(folder, test_database_url, address, issued):
                run.wait(120)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
    stdout, stderr = out.join(), err.join()
    run.stdout.close()
    run.stderr.close()
    assert stderr.count("still trying") == 1, stderr  # said once, not at every retry
    assert "DaemonUnreachable" in stderr and "answers again" in stderr
    summary = stdout.strip().splitlines()[-1]
    assert summary.startswith(f"job {job_id} "), stdout
    status = summary.split()[2].rstrip(";")
    assert run.returncode == (0 if status == "succeeded" else 1)


@pytest.fixture
def private_daemon(tmp_path: Path) -> Iterator[tuple[PrivateMariaDB, RunningDaemon]]:
    """A daemon recording into a private MariaDB the test may kill."""
    with PrivateMariaDB() as database:
        migrate(database.url)
        seed(database.url, tmp_path / "seed")
        address = f"127.0.0.1:{free_port()}"
        with local_daemon(tmp_path / "daemon", database.url, address) as daemon:
            yield database, daemon


def test_ping_says_degraded_and_commands_say_why_while_the_database_is_down(
    private_daemon, omserver
) -> None:
    database, daemon = private_daemon
    done = omserver(daemon, "run", "1003", "--hosts", HOST)
    assert done.returncode == 0, done.stderr
    job_id = int(done.stdout.split()[1].rstrip(":"))
    assert omserver(daemon, "ping").returncode == 0

    database.kill()
    with daemon.client() as client:

        def degraded() -> bool:
            try:
                return client.ping().get("health", {}).get("status") == "degraded"
            except DaemonError:
                return False

        wait_for(degraded, 60, "the daemon to notice")
    ping = omserver(daemon, "ping")
    assert ping.returncode == 3, ping.stdout + ping.stderr
    assert ping.stdout.startswith("degraded: omserver ")
    assert "problem: the database is unreachable" in ping.stdout

    job = omserver(daemon, "job", str(job_id))
    assert job.returncode == 1
    (line,) = job.stderr.strip().splitlines()  # one line, and it names the database
    assert "Unavailable" in line and "database" in line and "log" not in line

    database.start()
    with daemon.client() as client:
        wait_for(lambda: client.ping()["health"]["status"] == "ok", 60, "the daemon to recover")
    assert omserver(daemon, "ping").returncode == 0
    again = omserver(daemon, "job", str(job_id))
    assert again.returncode == 0, again.stderr
