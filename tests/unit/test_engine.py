"""The job engine on its own: queue order and exclusive locks, rollout stops, cancel,
timeouts and final statuses, with an in-memory recorder and a scripted executor.

No database, daemon process or backend: these run in a few seconds. The real tier
(tests/test_daemon_jobs.py and friends) runs the same engine against MariaDB and Salt.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from omserver.config import Config
from omserver.jobs.engine import Engine, SubmitError
from tests.lab.procs import wait_for
from tests.unit.fakes import FakeRegistry, MemoryRecorder, ScriptedExecutor, module

HOSTS = ["h1", "h2", "h3", "h4", "h5", "h6"]
PLAIN, EXCLUSIVE = 1001, 1002
LONG = 30.0  # seconds: a deadline generous enough for a busy machine


@pytest.fixture
def executor() -> ScriptedExecutor:
    return ScriptedExecutor()


@pytest.fixture
def recorder() -> MemoryRecorder:
    return MemoryRecorder(HOSTS)


@pytest.fixture
def make_engine(
    tmp_path, recorder: MemoryRecorder, executor: ScriptedExecutor
) -> Iterator[Callable[..., Engine]]:
    started: list[Engine] = []

    def make(workers: int = 1) -> Engine:
        config = Config(
            {"OMSERVER_PATHS_DATA_DIR": str(tmp_path), "OMSERVER_DAEMON_WORKERS": str(workers)}
        )
        registry = FakeRegistry(module(PLAIN), module(EXCLUSIVE, exclusive=True))
        engine = Engine(config, registry, recorder, name="unit", executor=executor)
        engine.start()
        started.append(engine)
        return engine

    yield make
    for engine in started:
        engine.shutdown(grace=LONG)


def submit(engine: Engine, tag: str, hosts: list[str], module_id: int = PLAIN, **extra: Any) -> int:
    body = {
        "module": module_id,
        "targets": [{"hostname": h} for h in hosts],
        "params": {"tag": tag},
        **extra,
    }
    return engine.submit("unit-test", body)


def ended(engine: Engine, job_id: int) -> dict[str, Any]:
    state = engine.wait(job_id, LONG)
    assert state["status"] not in ("queued", "running"), state
    return state


def not_run(state: dict[str, Any]) -> dict[str, str]:
    """Host -> why, for the hosts the job never reached."""
    return {r["host"]: r["error"] for r in state["results"] if r["status"] == "not_run"}


def wait_running(executor: ScriptedExecutor, tag: str) -> None:
    assert executor.running[tag].wait(LONG), f"job {tag} never started"


# -- the queue ----------------------------------------------------------------------------


def test_jobs_start_in_the_order_they_were_queued(make_engine, executor) -> None:
    engine = make_engine(workers=1)
    gate = executor.hold("a")
    first = submit(engine, "a", ["h1"])
    wait_running(executor, "a")
    later = [submit(engine, tag, ["h1"]) for tag in ("b", "c", "d")]
    gate.set()
    for job_id in (first, *later):
        ended(engine, job_id)
    assert [tag for event, tag, _ in executor.log if event == "start"] == ["a", "b", "c", "d"]


def test_an_exclusive_job_waits_for_its_host_while_later_free_jobs_go_by(
    make_engine, executor
) -> None:
    engine = make_engine(workers=2)
    gate = executor.hold("first")
    first = submit(engine, "first", ["h1"], EXCLUSIVE)
    wait_running(executor, "first")
    blocked = submit(engine, "blocked", ["h1", "h2"], EXCLUSIVE)
    other_host = submit(engine, "other-host", ["h3"], EXCLUSIVE)
    free = submit(engine, "free", ["h1"], PLAIN)
    assert ended(engine, free)["status"] == "succeeded"
    assert ended(engine, other_host)["status"] == "succeeded"
    assert engine.state(blocked)["status"] == "queued"
    assert executor.started("blocked") == []
    gate.set()
    assert ended(engine, blocked)["status"] == "succeeded"
    log = [(event, tag) for event, tag, _ in executor.log]
    assert log.index(("start", "blocked")) > log.index(("end", "first"))
    ended(engine, first)


# -- rollout ------------------------------------------------------------------------------


def test_a_failing_canary_stops_the_rollout_and_the_canary_is_the_first_listed(
    make_engine, executor, recorder
) -> None:
    executor.outcomes = {"h3": "failed"}
    engine = make_engine()
    rollout = {"canary": 1, "max_failure_ratio": 0}
    state = ended(engine, submit(engine, "r", ["h3", "h1", "h2", "h4"], rollout=rollout))
    assert executor.started("r") == [("h3",)]
    assert state["status"] == "failed"
    assert state["rollout_stop"].startswith("stopped after the canary: 1 of 1 hosts failed")
    assert state["rollout_stop"].endswith("3 host(s) not run")
    why = "not run: the rollout stopped after the canary: 1 of 1 hosts failed (100% > 0% allowed)"
    assert not_run(state) == {"h1": why, "h2": why, "h4": why}


def test_batches_go_on_while_the_failure_ratio_holds_and_stop_once_it_is_passed(
    make_engine, executor
) -> None:
    executor.outcomes = {"h2": "failed", "h4": "unreachable"}
    engine = make_engine()
    rollout = {"batch_size": 2, "max_failure_ratio": 0.3}
    state = ended(engine, submit(engine, "r", HOSTS, rollout=rollout))
    # after batch 1: 1 of 2 failed (50%) > 30%: stop.
    assert executor.started("r") == [("h1", "h2")]
    assert state["status"] == "partial"
    assert "stopped after batch 1: 1 of 2 hosts failed" in state["rollout_stop"]
    assert sorted(not_run(state)) == ["h3", "h4", "h5", "h6"]

    executor.log.clear()
    rollout = {"batch_size": 4, "max_failure_ratio": 0.5}
    state = ended(engine, submit(engine, "r", HOSTS, rollout=rollout))
    # after batch 1: 2 of 4 failed (50%) is allowed; batch 2 runs.
    assert executor.started("r") == [("h1", "h2", "h3", "h4"), ("h5", "h6")]
    assert (state["status"], state["rollout_stop"]) == ("partial", "")
    assert not_run(state) == {}


# -- cancel -------------------------------------------------------------------------------


def test_a_job_cancelled_before_it_started_never_runs(make_engine, executor) -> None:
    engine = make_engine(workers=1)
    gate = executor.hold("running")
    running = submit(engine, "running", ["h1"])
    wait_running(executor, "running")
    waiting = submit(engine, "waiting", ["h2"])
    state = engine.cancel(waiting)
    assert (state["status"], state["error"]) == ("cancelled", "cancelled before it started")
    assert not_run(state) == {"h2": "not run: cancelled"}
    gate.set()
    assert ended(engine, running)["status"] == "succeeded"
    assert executor.started("waiting") == []


def test_a_job_cancelled_while_it_runs_ends_cancelled(make_engine, executor) -> None:
    engine = make_engine()
    executor.hold("long")
    job_id = submit(engine, "long", ["h1", "h2"])
    wait_running(executor, "long")
    engine.cancel(job_id)
    state = ended(engine, job_id)
    assert state["status"] == "cancelled"
    assert {r["host"]: (r["status"], r["error"]) for r in state["results"]} == {
        "h1": ("cancelled", "cancelled"),
        "h2": ("cancelled", "cancelled"),
    }


def test_cancelling_between_batches_runs_no_further_batch(make_engine, executor) -> None:
    engine = make_engine()
    executor.hold("r")
    job_id = submit(engine, "r", ["h1", "h2", "h3"], rollout={"canary": 1, "batch_size": 1})
    wait_running(executor, "r")
    engine.cancel(job_id)
    state = ended(engine, job_id)
    assert state["status"] == "cancelled"
    assert executor.started("r") == [("h1",)]
    assert not_run(state) == {"h2": "not run: cancelled", "h3": "not run: cancelled"}


# -- timeouts -----------------------------------------------------------------------------


def test_a_job_past_its_timeout_ends_timeout_and_frees_its_worker(make_engine, executor) -> None:
    engine = make_engine(workers=1)
    executor.hold("stuck")  # never opened: only the timeout ends it
    stuck = submit(engine, "stuck", ["h1"], timeout=0.3)
    after = submit(engine, "after", ["h2"])
    state = ended(engine, stuck)
    assert state["status"] == "timeout"
    assert [r["status"] for r in state["results"]] == ["timeout"]
    assert ended(engine, after)["status"] == "succeeded"


def test_a_timeout_between_batches_runs_no_further_batch(make_engine, executor) -> None:
    engine = make_engine()
    executor.hold("r")
    job_id = submit(engine, "r", ["h1", "h2"], timeout=0.3, rollout={"batch_size": 1})
    state = ended(engine, job_id)
    assert state["status"] == "timeout"
    assert executor.started("r") == [("h1",)]
    assert not_run(state) == {"h2": "not run: the job's timeout"}


def test_a_later_batch_is_not_started_with_under_a_second_left(make_engine, executor) -> None:
    """The canary ends 0.8 s into a 1.5 s job (or later, on a busy machine): the next
    batch could only time out, so it is not run, and the job reads timeout."""
    engine = make_engine()
    gate = executor.hold("r")
    timer = threading.Timer(0.8, gate.set)
    job_id = submit(engine, "r", ["h1", "h2"], timeout=1.5, rollout={"batch_size": 1})
    timer.start()
    state = ended(engine, job_id)
    timer.cancel()
    assert state["status"] == "timeout"
    assert executor.started("r") == [("h1",)]
    assert not_run(state) == {"h2": "not run: the job's timeout"}


# -- final statuses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        ({}, "succeeded"),
        ({"h2": "failed"}, "partial"),
        ({"h1": "unreachable", "h2": "timeout"}, "failed"),
    ],
)
def test_the_final_status_follows_the_hosts(make_engine, executor, outcomes, status) -> None:
    executor.outcomes = outcomes
    engine = make_engine()
    assert ended(engine, submit(engine, "s", ["h1", "h2"]))["status"] == status


def test_an_executor_that_raises_fails_its_job_and_the_worker_goes_on(
    make_engine, executor
) -> None:
    engine = make_engine(workers=1)
    state = ended(engine, submit(engine, "crash", ["h1"]))
    assert state["status"] == "failed"
    assert state["error"] == "internal error: RuntimeError('the executor broke')"
    assert state["results"] == [
        {
            "host": "h1",
            "status": "not_run",
            "error": "not run: internal error: RuntimeError('the executor broke')",
        }
    ]
    assert ended(engine, submit(engine, "next", ["h1"]))["status"] == "succeeded"
    assert engine.health()["status"] == "ok"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_worker_that_dies_is_replaced_and_health_says_so(make_engine, executor) -> None:
    engine = make_engine(workers=1)
    state = ended(engine, submit(engine, "exit", ["h1"]))
    assert state["status"] == "failed"  # the job is closed all the same
    assert ended(engine, submit(engine, "next", ["h1"]))["status"] == "succeeded"
    wait_for(lambda: engine.health()["workers"] == 1, LONG, "the worker replaced")
    health = engine.health()
    assert (health["status"], health["workers_replaced"]) == ("degraded", 1)
    assert "1 job worker(s) died and were replaced; see the log" in health["problems"]


# -- shutdown and refusals ----------------------------------------------------------------


def test_shutdown_leaves_running_jobs_to_their_processes_and_refuses_new_jobs(
    make_engine, executor, recorder
) -> None:
    engine = make_engine(workers=1)
    executor.hold("running")
    running = submit(engine, "running", ["h1"])
    wait_running(executor, "running")
    queued = submit(engine, "queued", ["h2"])
    engine.shutdown(grace=0.2)
    assert recorder.jobs[running].status == "running"  # for the next start to adopt
    assert recorder.jobs[running].hosts["h1"]["status"] == "running"
    assert recorder.jobs[queued].status == "queued"  # work asked for is not thrown away
    with pytest.raises(SubmitError) as refused:
        submit(engine, "late", ["h1"])
    assert refused.value.code == "unavailable"
    # The scripted executor keeps no journal: nothing to adopt, so the next start
    # interrupts the job, and runs the queued one.
    executor.hold("queued").set()
    assert ended(make_engine(workers=1), queued)["status"] == "succeeded"
    assert recorder.jobs[running].status == "interrupted"


def test_a_job_queued_at_shutdown_runs_after_the_next_start(
    make_engine, executor, recorder
) -> None:
    engine = make_engine(workers=1)
    executor.hold("first")
    submit(engine, "first", ["h1"])
    wait_running(executor, "first")
    body = {"module": PLAIN, "targets": [{"hostname": "h2"}]}
    queued = engine.submit("unit-test", {**body, "params": {"tag": "queued", "secret": "s3cret"}})
    assert "s3cret" not in recorder.jobs[queued].fields["order"]  # sealed in the record
    engine.shutdown(grace=0.2)
    assert executor.started("queued") == []
    executor.hold("queued").set()
    state = ended(make_engine(workers=1), queued)
    assert state["status"] == "succeeded"
    assert executor.started("queued") == [("h2",)]
    assert executor.params["queued"]["secret"] == "s3cret"  # as given, not masked


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"module": 4242}, "unknown_module", "module"),
        ({"module": "1001"}, "invalid_request", "module"),
        ({"params": {"tag": "x", "nope": 1}}, "invalid_params", "nope"),
        ({"targets": [{"hostname": "not-in-inventory"}]}, "invalid_request", "targets"),
        ({"targets": [{"hostname": "h1"}, {"hostname": "h1"}]}, "invalid_request", "targets"),
        ({"timeout": 0}, "invalid_request", "timeout"),
        ({"rollout": {"canary": -1}}, "invalid_request", "rollout"),
    ],
)
def test_a_bad_request_is_refused_before_anything_is_recorded(
    make_engine, recorder, change, code, field
) -> None:
    engine = make_engine()
    body = {"module": PLAIN, "targets": [{"hostname": "h1"}], "params": {"tag": "x"}, **change}
    with pytest.raises(SubmitError) as refused:
        engine.submit("unit-test", body)
    assert (refused.value.code, refused.value.field) == (code, field)
    assert recorder.jobs == {}


def test_a_module_not_enabled_is_refused_like_an_unknown_one(make_engine, recorder) -> None:
    engine = make_engine()
    recorder.disabled.add(PLAIN)
    answers = []
    for module_id in (PLAIN, 4242):
        with pytest.raises(SubmitError) as refused:
            submit(engine, "x", ["h1"], module_id)
        answers.append((refused.value.code, str(refused.value).replace(str(module_id), "N")))
    assert answers[0] == answers[1] == ("unknown_module", "unknown or not permitted module N")
    assert recorder.jobs == {}
    assert {report["id"] for report in recorder.reported} == {PLAIN, EXCLUSIVE}


def test_a_job_whose_module_was_disabled_while_it_waited_never_runs(
    make_engine, recorder, executor
) -> None:
    engine = make_engine(workers=1)
    gate = executor.hold("running")
    running = submit(engine, "running", ["h1"])
    wait_running(executor, "running")
    waiting = submit(engine, "waiting", ["h2"])
    recorder.disabled.add(PLAIN)
    gate.set()
    assert ended(engine, running)["status"] == "succeeded"
    state = ended(engine, waiting)
    assert (state["status"], state["error"]) == ("failed", f"module {PLAIN} is not enabled")
    assert not_run(state) == {"h2": f"not run: module {PLAIN} is not enabled"}
    assert executor.started("waiting") == []
