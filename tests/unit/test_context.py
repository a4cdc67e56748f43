"""``ctx`` on its own: step numbers and actions, live output routed and masked."""

from __future__ import annotations

import time
from collections.abc import Sequence

from omserver.backends.base import Backend, Emit, Output
from omserver.config import Config
from omserver.sdk import Context, HostResult, Target
from omserver.sdk.steps import Step

SECRET = "s3cr3t-t0ken"
HOSTS = [Target("h1", "127.0.0.1"), Target("h2", "127.0.0.1")]


class EchoBackend(Backend):
    """Prints the step's description on each host, live and in the result; h2 fails."""

    name = "echo"

    def run(
        self,
        step: Step,
        targets: Sequence[Target],
        *,
        timeout: float,
        output_limit: int,
        emit: Emit,
        output: Output | None,
    ) -> None:
        for target in targets:
            text = step.describe()
            if output is not None:
                output(target.hostname, "stdout", text)
            status = "failed" if target.hostname == "h2" else "ok"
            emit(HostResult(target.hostname, status, 0, text))
            if output is not None:
                output(target.hostname, "stdout", "after the result")  # must be dropped


def context(live: bool = True) -> tuple[Context, list, list, list]:
    results, starts, chunks = [], [], []
    ctx = Context(
        EchoBackend(Config({})),
        HOSTS,
        params={"token": SECRET},
        settings={},
        deadline=time.monotonic() + 60,
        output_limit=1024,
        emit=results.append,
        announce=lambda *step: starts.append(step),
        output=(lambda *chunk: chunks.append(chunk)) if live else None,
        secrets=[SECRET],
    )
    return ctx, results, starts, chunks


def test_steps_are_numbered_described_masked_and_their_output_routed() -> None:
    ctx, results, starts, chunks = context()
    ctx.cmd(["echo", SECRET])
    ctx.shell('echo "$1"\necho more', args=["x y"])
    assert starts == [
        (1, "echo ********", ["h1", "h2"]),
        (2, "sh: echo \"$1\" … 'x y'", ["h1"]),  # h2 failed step 1: left out
    ]
    assert chunks == [
        ("h1", 1, "stdout", "echo ********"),
        ("h2", 1, "stdout", "echo ********"),
        ("h1", 2, "stdout", "sh: echo \"$1\" … 'x y'"),
    ]
    assert [(r.host, r.step, r.action, r.stdout) for r in results] == [
        ("h1", 1, "echo ********", "echo ********"),
        ("h2", 1, "echo ********", "echo ********"),
        ("h1", 2, "sh: echo \"$1\" … 'x y'", "sh: echo \"$1\" … 'x y'"),
    ]
    assert all(r.started > 0 for r in results)


def test_without_live_output_the_backend_is_asked_for_none() -> None:
    ctx, results, _, chunks = context(live=False)
    ctx.copy("app.conf", "/etc/app.conf")
    assert chunks == []
    assert [r.action for r in results] == ["copy app.conf → /etc/app.conf (0644)"] * 2
