"""Run a module the way the daemon does (``execution.execute``) and keep what streams."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from omserver.config import BASE_DIR, Config
from omserver.jobs import execution
from omserver.jobs.events import Event, HostDone, Output, StepCut
from omserver.modules.registry import ModuleRegistry
from omserver.sdk import HostResult, Target, validate_params

CLASSIC_MODULES = BASE_DIR / "modules"
FIXTURE_MODULES = Path(__file__).resolve().parents[1] / "fixtures_modules"


@dataclass
class JobRun:
    """Everything a job streamed, with the second it arrived after the start."""

    events: list[tuple[float, Event]] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def final(self) -> dict[str, HostResult]:
        """Each host's end: its last step's result, with the status the host ended with
        (and the reason, when no step gives it)."""
        last: dict[str, HostResult] = {}
        ends: dict[str, HostResult] = {}
        for _, event in self.events:
            if isinstance(event, HostResult):
                last[event.host] = event
            elif isinstance(event, StepCut):
                printed = self.printed(event.host, event.step)
                last[event.host] = HostResult(
                    event.host, event.status, stdout=printed, stderr=event.note, step=event.step
                )
            elif isinstance(event, HostDone):
                result = last.get(event.host) or HostResult(event.host, event.status)
                ends[event.host] = replace(
                    result, status=event.status, stderr=event.error or result.stderr
                )
        return ends

    def at(self, host: str) -> float:
        """When the host's first step result arrived."""
        return next(t for t, r in self.events if isinstance(r, HostResult) and r.host == host)

    def of(self, host: str) -> list[HostResult]:
        """The host's step results, in order."""
        return [r for _, r in self.events if isinstance(r, HostResult) and r.host == host]

    def printed(self, host: str, step: int, stream: str = "stdout") -> str:
        """What the step printed on ``stream`` while it ran (the live output)."""
        return "".join(
            text
            for _, event in self.events
            if isinstance(event, Output)
            for h, n, s, text in event.chunks
            if (h, n, s) == (host, step, stream)
        )


def run_module(
    config: Config,
    module_id: int,
    targets: Sequence[Target],
    params: dict[str, Any] | None = None,
    *,
    timeout: float = 60,
    cancel: threading.Event | None = None,
    modules_dir: Path = CLASSIC_MODULES,
) -> JobRun:
    module = ModuleRegistry(modules_dir, config["daemon.backend"]).get(module_id)
    clean = validate_params(module.params, params or {})
    run = JobRun()
    started = time.monotonic()
    for event in execution.execute(
        module, targets, clean, config=config, timeout=timeout, cancel=cancel
    ):
        run.events.append((time.monotonic() - started, event))
    run.elapsed = time.monotonic() - started
    return run


def run_steps(
    config: Config, targets: Sequence[Target], *steps: tuple[str, list, dict], timeout: float = 60
) -> JobRun:
    """Run ctx steps (``("cmd", [argv], {...})``) through the test module Mid_9996."""
    return run_module(
        config,
        9996,
        targets,
        {"steps": json.dumps(steps)},
        timeout=timeout,
        modules_dir=FIXTURE_MODULES,
    )
