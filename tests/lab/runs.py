"""Run a module the way the daemon does (``execution.execute``) and keep what streams."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omserver.config import BASE_DIR, Config
from omserver.jobs import execution
from omserver.modules.registry import ModuleRegistry
from omserver.sdk import HostResult, Target, validate_params

CLASSIC_MODULES = BASE_DIR / "modules"
FIXTURE_MODULES = Path(__file__).resolve().parents[1] / "fixtures_modules"


@dataclass
class JobRun:
    """Every result a job streamed, with the second it arrived after the start."""

    events: list[tuple[float, HostResult]] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def final(self) -> dict[str, HostResult]:
        """Each host's last result: what the daemon's upsert leaves in the table."""
        return {result.host: result for _, result in self.events}

    def at(self, host: str) -> float:
        """When the host's first result arrived."""
        return next(t for t, r in self.events if r.host == host)

    def of(self, host: str) -> list[HostResult]:
        return [r for _, r in self.events if r.host == host]


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
    for result in execution.execute(
        module, targets, clean, config=config, timeout=timeout, cancel=cancel
    ):
        run.events.append((time.monotonic() - started, result))
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
