"""The durable recorder on its own: writes kept through an outage, in order, once.

The in-memory recorder stands in for the database and can be switched off; the
real tier (tests/test_record_faults.py) kills a real MariaDB under a running job.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from omserver.jobs.durable import GIVE_UP_AFTER, REJECTED_FILE, SPOOL_FILE, DurableRecorder
from omserver.protocol.operations import OperationError
from omserver.sdk import HostResult
from tests.unit.fakes import MemoryRecorder

LONG = 30.0


class FlakyRecorder(MemoryRecorder):
    """A recorder whose "database" can be down, or refuse one kind of write."""

    def __init__(self) -> None:
        super().__init__(["h1", "h2"])
        self.down = False
        self.refuse = ""  # a write method name it raises on while up
        self.calls: list[str] = []

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if name.startswith("_") or not callable(attr) or name in ("calls", "down", "refuse"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise ConnectionError("(2013, 'Lost connection to server during query')")
            if name == self.refuse:
                raise ValueError("Data too long for column 'text'")
            self.calls.append(name)
            return attr(*args, **kwargs)

        return call


@pytest.fixture
def flaky() -> FlakyRecorder:
    return FlakyRecorder()


def new_job(recorder: FlakyRecorder) -> int:
    return recorder.create_job(targets=["h1", "h2"], client="unit", request=None, order="")


def test_writes_in_an_outage_are_kept_and_replayed_in_order(tmp_path, flaky) -> None:
    durable = DurableRecorder(flaky, tmp_path)
    job = new_job(flaky)
    durable.claim(job, None, "unit", "me", [])
    flaky.down = True
    durable.start_step(job, 1, "run", ["h1", "h2"], 0.0)
    durable.save_output(job, [("h1", 1, "stdout", "one\n")])
    flaky.down = False  # back, but an earlier write waits: this one must queue behind it
    durable.save_output(job, [("h1", 1, "stdout", "two\n")])
    durable.save_step(job, HostResult("h1", "ok", 0, "one\ntwo\n", step=1))
    durable.finish_hosts(job, [("h1", "ok", ""), ("h2", "ok", "")])
    durable.finish_job(job, "succeeded")
    assert durable.drain(LONG)
    recorded = flaky.jobs[job]
    assert recorded.status == "succeeded"
    assert [text for *_, text in recorded.output] == ["one\n", "two\n"]
    assert recorded.steps["h1", 1].stdout == "one\ntwo\n"
    assert recorded.hosts == {h: {"status": "ok", "error": ""} for h in ("h1", "h2")}
    assert not (tmp_path / SPOOL_FILE).exists()  # all in: nothing left to replay
    assert durable.health() == {"database": "ok", "database_error": "", "spooled": 0}


def test_while_the_record_is_down_health_counts_the_kept_writes_and_reads_say_why(
    tmp_path, flaky
) -> None:
    durable = DurableRecorder(flaky, tmp_path)
    job = new_job(flaky)
    flaky.down = True
    durable.start_step(job, 1, "run", ["h1"], 0.0)
    durable.save_output(job, [("h1", 1, "stdout", "x\n")])
    health = durable.health()
    assert (health["database"], health["spooled"]) == ("unreachable", 2)
    assert "Lost connection" in health["database_error"]
    with pytest.raises(OperationError) as refused:
        durable.job_state(job)
    assert refused.value.code == "unavailable"
    assert "cannot be reached" in refused.value.message
    lines = (tmp_path / SPOOL_FILE).read_text().splitlines()
    assert [json.loads(line)["name"] for line in lines] == ["start_step", "save_output"]
    flaky.down = False
    assert durable.drain(LONG)
    assert flaky.jobs[job].output == [("h1", 1, "stdout", "x\n")]


def test_a_restart_replays_the_spool_and_writes_nothing_twice(tmp_path: Path, flaky) -> None:
    first = DurableRecorder(flaky, tmp_path)
    job = new_job(flaky)
    flaky.down = True
    first.save_output(job, [("h1", 1, "stdout", "a\n")])
    first.save_output(job, [("h1", 1, "stdout", "b\n")])
    spooled = (tmp_path / SPOOL_FILE).read_text()
    flaky.down = False
    assert first.drain(LONG)
    # As if the daemon died after the writes went in but before its spool was cleared,
    # with a line torn by the crash at the end.
    (tmp_path / SPOOL_FILE).write_text(spooled + '{"key": "torn')
    second = DurableRecorder(flaky, tmp_path)
    assert second.drain(LONG)
    assert [text for *_, text in flaky.jobs[job].output] == ["a\n", "b\n"]


def test_a_write_the_record_keeps_refusing_is_set_aside_and_the_rest_goes_in(
    tmp_path, flaky, monkeypatch
) -> None:
    monkeypatch.setattr("omserver.jobs.durable.RETRY_FIRST", 0.01)
    durable = DurableRecorder(flaky, tmp_path)
    job = new_job(flaky)
    flaky.refuse = "save_output"
    durable.save_output(job, [("h1", 1, "stdout", "x" * 10)])
    durable.finish_job(job, "succeeded")
    assert durable.drain(LONG)
    assert flaky.jobs[job].status == "succeeded"
    rejected = (tmp_path / REJECTED_FILE).read_text().splitlines()
    assert [json.loads(line)["name"] for line in rejected] == ["save_output"]
    assert flaky.calls.count("replay") >= GIVE_UP_AFTER
