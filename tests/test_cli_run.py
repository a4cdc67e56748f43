"""`omserver run | job | modules` against a real daemon, as an operator's shell would."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import WWW_HOSTS

pytestmark = [pytest.mark.salt, pytest.mark.usefixtures("transactional_db", "inventory")]


@dataclass
class Cli:
    """The CLI as the tool "ops-cli" with its own key, given through a key file."""

    address: str
    key_file: Path
    env: dict[str, str]

    def argv(self, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "omserver",
            *args,
            "--address",
            self.address,
            "--client-id",
            "ops-cli",
            "--key-file",
            str(self.key_file),
        ]


@pytest.fixture
def cli(salt_daemon_for_web, tmp_path) -> Cli:
    key = salt_daemon_for_web.issued.get("ops-cli") or salt_daemon_for_web.add_client("ops-cli")
    key_file = tmp_path / "ops-cli.key"
    key_file.write_text(key)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMSERVER_DAEMON")}
    env["OMSERVER_PATHS_DATA_DIR"] = str(tmp_path / "var")
    return Cli(salt_daemon_for_web.address, key_file, env)


@pytest.fixture
def omserver(cli):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cli.argv(*args), env=cli.env, capture_output=True, text=True, timeout=120
        )

    return run


def test_run_prints_each_host_and_exits_0_when_all_succeed(omserver) -> None:
    done = omserver("run", "1003", "--hosts", ",".join(WWW_HOSTS))
    assert done.returncode == 0, done.stderr
    first_line = Path("/etc/issue").read_text().splitlines()[0]
    for host in WWW_HOSTS:
        assert f"== {host} [ok]" in done.stdout
        assert f"{host}#1 | {first_line}" in done.stdout
    assert done.stdout.count(first_line) == len(WWW_HOSTS)
    assert "succeeded" in done.stdout


def test_run_json_then_job_json_agree(omserver) -> None:
    done = omserver("run", "1001", "--hosts", WWW_HOSTS[0], "--param", "lines=3", "--json")
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    job = lines[-1]["job"]
    again = json.loads(omserver("job", str(job["id"]), "--json").stdout)
    assert again["status"] == job["status"]
    assert [r["host"] for r in again["results"]] == [WWW_HOSTS[0]]


def test_run_exits_non_zero_when_a_parameter_is_refused(omserver) -> None:
    done = omserver("run", "1001", "--hosts", WWW_HOSTS[0], "--param", "lines=$(touch /tmp/x)")
    assert done.returncode != 0
    assert "lines" in done.stderr


def test_run_exits_non_zero_when_a_host_fails(omserver) -> None:
    done = omserver("run", "1006", "--hosts", WWW_HOSTS[0], "--param", "service=haproxy")
    assert done.returncode == 1
    assert f"== {WWW_HOSTS[0]} [failed]" in done.stdout


def test_modules_lists_the_classic_modules(omserver) -> None:
    listing = omserver("modules", "--json")
    assert listing.returncode == 0
    ids = {m["id"] for m in json.loads(listing.stdout)["modules"]}
    assert set(range(1001, 1008)) <= ids


def first_line_then_close(cli: Cli, *args: str) -> tuple[str, int, str]:
    """Run the CLI into a pipe whose reader takes one line and closes it, as `| head -n1`
    does. The pipe holds one page, so the CLI is still writing when the reader goes.
    The line read, the exit status and stderr."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    proc = subprocess.Popen(
        cli.argv(*args), env=cli.env, stdout=write_end, stderr=subprocess.PIPE, text=True
    )
    os.close(write_end)
    with open(read_end, encoding="utf-8") as reader:
        line = reader.readline()
    _, stderr = proc.communicate(timeout=120)
    return line, proc.returncode, stderr


def test_job_into_a_closed_pipe_exits_quietly_with_141(cli, omserver) -> None:
    done = omserver("run", "1006", "--hosts", ",".join(WWW_HOSTS), "--param", "service=ssh")
    job_id = done.stdout.split(":")[0].removeprefix("job ")
    assert int(job_id) and len(done.stdout) > 4096  # more than the pipe holds

    line, status, stderr = first_line_then_close(cli, "job", job_id)
    assert line.startswith("== ")
    assert status == 141
    assert stderr == ""


def test_run_into_a_closed_pipe_exits_quietly_and_the_job_goes_on(cli, salt_daemon_for_web) -> None:
    from omserverweb.jobs.models import Job

    hosts = ",".join(WWW_HOSTS)
    line, status, stderr = first_line_then_close(
        cli, "run", "1006", "--hosts", hosts, "--param", "service=ssh"
    )
    assert status == 141
    assert stderr == ""
    job_id = int(line.split(":")[0].removeprefix("job "))
    with salt_daemon_for_web.client() as client:
        assert client.wait(job_id, timeout=120)["status"] == "succeeded"
    job = Job.objects.get(pk=job_id)
    assert job.status == "succeeded"
    assert sorted(job.results.values_list("status", flat=True)) == ["ok", "ok"]
