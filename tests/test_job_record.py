"""The job record keeps every step and every line, live, on both backends.

A real daemon on the Salt lab and on the sshd lab records into the test
database; the tests read what a user would see through the REST API while the
job runs, and the record after it ended.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from omserver.client import Client
from tests.lab.procs import wait_for
from tests.records import hosts_of, steps_of

pytestmark = pytest.mark.usefixtures("transactional_db")

LINES, THREE_STEPS, FLOOD = 9106, 9107, 9108
LONG = 120  # seconds: deadlines generous enough for a busy machine


@pytest.fixture
def client(lab_daemon) -> Iterator[Client]:
    daemon, _ = lab_daemon
    with daemon.client("ops-tool") as client:
        yield client


@pytest.fixture
def targets(lab_daemon) -> list[dict]:
    return lab_daemon[1]


@pytest.fixture
def api(alice) -> APIClient:
    client = APIClient()
    client.force_authenticate(alice)
    return client


class Reader:
    """Follows a job through ``jobs/<id>/results/`` as the console does, keeping what
    each step printed live and each step's row as it was last seen."""

    def __init__(self, api: APIClient, job_id: int) -> None:
        self.api, self.job_id = api, job_id
        self.cursor = 0
        self.status = "queued"
        self.live: dict[tuple[str, int, str], str] = {}
        self.steps: dict[tuple[str, int], dict[str, Any]] = {}
        self.hosts: dict[str, dict[str, Any]] = {}

    def poll(self) -> None:
        while True:
            page = self.api.get(f"/api/jobs/{self.job_id}/results/?after={self.cursor}").data
            self.status, self.cursor = page["status"], page["cursor"]
            for chunk in page["output"]:
                key = (chunk["host"], chunk["step"], chunk["stream"])
                self.live[key] = self.live.get(key, "") + chunk["text"]
            self.steps.update({(s["host"], s["number"]): s for s in page["steps"]})
            self.hosts.update({h["host"]: h for h in page["results"]})
            if not page["more"]:
                return

    def until(self, condition, what: str) -> None:
        def check() -> bool:
            self.poll()
            return condition()

        wait_for(check, LONG, what, interval=0.2)

    def printed(self, host: str, step: int = 1, stream: str = "stdout") -> str:
        return self.live.get((host, step, stream), "")


def test_a_three_step_module_keeps_each_step_with_its_own_output_and_time(client, targets) -> None:
    state = client.run(THREE_STEPS, targets, timeout=LONG)
    assert state["status"] == "succeeded"
    for target in targets:
        host = target["hostname"]
        steps = steps_of(state, host)
        assert [(s["number"], s["status"], s["rc"]) for s in steps] == [
            (1, "ok", 0),
            (2, "ok", 0),
            (3, "ok", 0),
        ]
        assert [s["stdout"] for s in steps] == ["first step", "second step", "third step"]
        assert [s["action"] for s in steps] == [
            "echo 'first step'",
            'sh: sleep "$1"; echo "second step" 2',
            "sh -c 'echo third step; sleep 1'",
        ]
        first, second, third = (s["duration"] for s in steps)
        assert second >= 2 and third >= 1 and first < second
        assert steps[0]["started_at"] < steps[1]["started_at"] < steps[2]["started_at"]
        row = hosts_of(state)[host]
        assert (row["status"], row["rc"], row["error"]) == ("ok", 0, "")
        assert row["duration"] >= second + third


def test_lines_a_running_step_prints_are_read_through_the_rest_api_before_it_ends(
    client, targets, api
) -> None:
    host = targets[0]["hostname"]
    job_id = client.submit(LINES, targets, {"lines": 8, "pause_ms": 1000}, timeout=LONG)
    reader = Reader(api, job_id)
    reader.until(lambda: "line 1" in reader.printed(host), "line 1 to show")
    assert reader.steps[host, 1]["status"] == "running"  # shown while the step still runs
    assert "line 8" not in reader.printed(host)
    reader.until(lambda: "line 2" in reader.printed(host), "line 2 to show")
    reader.until(lambda: "note 2" in reader.printed(host, stream="stderr"), "stderr to show")
    assert "line 8" not in reader.printed(host)
    reader.until(lambda: reader.status not in ("queued", "running"), "the job to end")
    assert reader.status == "succeeded"
    for target in targets:
        name = target["hostname"]
        step = reader.steps[name, 1]
        expected = "\n".join(f"line {n}" for n in range(1, 9))  # no line break at the end
        assert (step["status"], step["stdout"]) == ("ok", expected)
        assert step["stderr"] == "\n".join(f"note {n}" for n in range(1, 9))
        # what was shown live is where the record begins: nothing lost or doubled
        assert step["stdout"].startswith(reader.printed(name))
        assert reader.hosts[name]["status"] == "ok"


def _stopped_mid_step(client, targets, api, **submit: Any) -> tuple[Reader, int]:
    host = targets[0]["hostname"]
    job_id = client.submit(LINES, targets, {"lines": 100, "pause_ms": 500}, **submit)
    reader = Reader(api, job_id)
    reader.until(lambda: "line 2" in reader.printed(host), "line 2 to show")
    return reader, job_id


def test_a_cancel_mid_step_keeps_what_the_hosts_printed(client, targets, api) -> None:
    reader, job_id = _stopped_mid_step(client, targets, api, timeout=LONG)
    client.cancel(job_id)
    reader.until(lambda: reader.status not in ("queued", "running"), "the job to end")
    assert reader.status == "cancelled"
    host = targets[0]["hostname"]
    step = reader.steps[host, 1]
    assert step["status"] == "cancelled"
    assert step["stdout"].startswith("line 1\nline 2")
    assert step["stderr"].startswith("note 1\n") and step["stderr"].endswith("[cancelled]")
    assert "line 100" not in step["stdout"]
    assert (reader.hosts[host]["status"], reader.hosts[host]["error"]) == (
        "cancelled",
        "cancelled",
    )
    assert {s["status"] for s in reader.steps.values()} == {"cancelled"}


def test_a_timeout_mid_step_keeps_what_the_hosts_printed(client, targets, api) -> None:
    started = time.monotonic()
    reader, _ = _stopped_mid_step(client, targets, api, timeout=6)
    reader.until(lambda: reader.status not in ("queued", "running"), "the job to end")
    assert reader.status == "timeout"
    assert time.monotonic() - started < LONG
    for target in targets:
        host = target["hostname"]
        step = reader.steps[host, 1]
        assert step["status"] == "timeout"
        assert step["stdout"].startswith("line 1\nline 2")
        assert "line 100" not in step["stdout"]
        assert reader.hosts[host]["status"] == "timeout"


def test_hosts_the_timeout_kept_from_running_are_listed_with_why(client, targets) -> None:
    rollout = {"canary": 1, "max_failure_ratio": 1.0}
    state = client.run(
        LINES, targets, {"lines": 100, "pause_ms": 500}, timeout=5, rollout=rollout, check=False
    )
    assert state["status"] == "timeout"
    later = hosts_of(state)[targets[1]["hostname"]]
    assert (later["status"], later["error"]) == ("not_run", "not run: the job's timeout")
    assert steps_of(state, later["host"]) == []


def test_sixty_mebibytes_on_a_host_keep_the_job_process_small(client, targets) -> None:
    host = targets[0]["hostname"]
    state = client.run(FLOOD, targets[:1], {"mib": 60}, timeout=LONG)
    flood, report = steps_of(state, host)
    assert flood["truncated"] and flood["status"] == "ok"
    assert len(flood["stdout"].encode()) <= 1024 * 1024 + 100  # the limit, plus the note
    assert "bytes omitted" in flood["stdout"] and flood["stdout"].endswith("x" * 1000)
    growth_kib = int(report["stdout"].strip().removeprefix("rss_growth_kib="))
    assert growth_kib < 64 * 1024, f"the job process grew {growth_kib} KiB"
    assert hosts_of(state)[host]["truncated"]
