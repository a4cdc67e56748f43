"""How a job ends: the module's child process, its timeout, cancel, crashes and secrets."""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

import pytest

from tests.lab.fixtures import BackendLab
from tests.lab.procs import wait_for
from tests.lab.runs import FIXTURE_MODULES, run_module


def misbehave(
    lab: BackendLab,
    how: str,
    *,
    timeout: float = 30,
    cancel: threading.Event | None = None,
    **params: object,
):
    return run_module(
        lab.config(),
        9998,
        lab.targets,
        {"how": how, **params},
        timeout=timeout,
        cancel=cancel,
        modules_dir=FIXTURE_MODULES,
    )


def running(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def test_a_module_that_raises_fails_its_hosts_with_the_message(backend_lab: BackendLab) -> None:
    run = misbehave(backend_lab, "raise")
    assert {r.status for r in run.final.values()} == {"failed"}
    assert set(run.final) == {t.hostname for t in backend_lab.targets}
    message = run.final[backend_lab.targets[0].hostname].stderr
    assert re.fullmatch(r"RuntimeError: boom from the module \(Mid_9998\.py line \d+\)", message)


def test_a_module_error_is_reported_as_written(backend_lab: BackendLab) -> None:
    run = misbehave(backend_lab, "module-error")
    assert {r.stderr for r in run.final.values()} == {"the module gives up politely"}


def test_a_hanging_module_is_stopped_at_its_timeout(
    backend_lab: BackendLab, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="omserver.module.9998")
    run = misbehave(backend_lab, "hang", timeout=2)
    assert {r.status for r in run.final.values()} == {"timeout"}
    assert all("2 s timeout" in r.stderr for r in run.final.values())
    assert 2 <= run.elapsed < 6
    pids = [int(p) for p in re.findall(r"pid (\d+)", caplog.text)]
    assert len(pids) == 2
    for pid in pids:  # the module's process and the process it started are both gone
        # (SIGKILL is sent; a loaded machine may take a moment to schedule the death)
        wait_for(lambda pid=pid: not running(pid), 5, f"pid {pid} to end")


def test_a_cancelled_job_stops_and_says_so(backend_lab: BackendLab) -> None:
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    started = time.monotonic()
    run = misbehave(backend_lab, "hang", cancel=cancel)
    assert time.monotonic() - started < 5
    assert {(r.status, r.stderr) for r in run.final.values()} == {("cancelled", "cancelled")}


def test_a_module_process_that_dies_fails_its_hosts(backend_lab: BackendLab) -> None:
    run = misbehave(backend_lab, "exit")
    assert {r.stderr for r in run.final.values()} == {"the module's process died (exit code 7)"}


def test_a_host_the_module_never_touched_ends_failed(backend_lab: BackendLab) -> None:
    run = misbehave(backend_lab, "nothing")
    assert {(r.status, r.stderr) for r in run.final.values()} == {
        ("failed", "the module ran no step on this host")
    }


def test_a_host_that_failed_a_step_keeps_its_failure(backend_lab: BackendLab) -> None:
    run = misbehave(backend_lab, "fail-then-step")
    first, *others = [t.hostname for t in backend_lab.targets]
    assert [(r.status, r.rc) for r in run.of(first)] == [("failed", 1)]  # left out of step 2
    for host in others:
        assert [(r.status, r.stdout) for r in run.of(host)] == [("ok", "second step")]


def test_a_timeout_after_a_step_ends_the_host_but_keeps_the_step(
    backend_lab: BackendLab,
) -> None:
    run = misbehave(backend_lab, "step-then-hang", timeout=4)
    for target in backend_lab.targets:
        [step] = run.of(target.hostname)
        assert (step.step, step.status, step.stdout) == (1, "ok", "first step")
        end = run.final[target.hostname]
        assert (end.status, end.stdout) == ("timeout", "first step")
        assert "4 s timeout" in end.stderr


def test_sensitive_values_never_leave_the_module_unmasked(
    backend_lab: BackendLab, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="omserver.module.9998")
    run = misbehave(backend_lab, "secret", token="s3cr3t-t0ken")
    assert {r.stdout for r in run.final.values()} == {"the token is ********"}
    misbehave(backend_lab, "log", token="s3cr3t-t0ken")
    misbehave(backend_lab, "raise", token="s3cr3t-t0ken")
    assert "about to use ********" in caplog.text
    assert "s3cr3t-t0ken" not in caplog.text
