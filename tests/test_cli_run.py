"""`omserver run | job | modules` against a real daemon, as an operator's shell would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import WWW_HOSTS

pytestmark = [pytest.mark.salt, pytest.mark.usefixtures("transactional_db", "inventory")]


@pytest.fixture
def omserver(salt_daemon_for_web, tmp_path):
    """Run the CLI as the tool "ops-cli" with its own key, given through a key file."""
    key = salt_daemon_for_web.issued.get("ops-cli") or salt_daemon_for_web.add_client("ops-cli")
    key_file = tmp_path / "ops-cli.key"
    key_file.write_text(key)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMSERVER_DAEMON")}
    env["OMSERVER_PATHS_DATA_DIR"] = str(tmp_path / "var")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "omserver",
                *args,
                "--address",
                salt_daemon_for_web.address,
                "--client-id",
                "ops-cli",
                "--key-file",
                str(key_file),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
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
