"""What each daemon operation does, once the gate has let its frame in."""

from __future__ import annotations

import time
from typing import Any

from omserver.jobs.engine import Engine
from omserver.modules.registry import ModuleRegistry

MAX_WAIT = 3600.0  # one wait holds a connection's thread: bound it


class CatalogHandler:
    """``ping`` and ``modules`` from the module registry.

    The module count in ``ping`` is at most ``COUNT_TTL`` seconds old: a
    registry scan costs more than the whole rest of a ping.
    """

    COUNT_TTL = 1.0

    def __init__(self, registry: ModuleRegistry) -> None:
        self.registry = registry
        self._count = (0, float("-inf"))  # (modules, monotonic time counted)

    def ping(self, caller: str) -> dict[str, Any]:
        count, counted = self._count
        if time.monotonic() - counted >= self.COUNT_TTL:
            count = len(self.registry.all())
            self._count = (count, time.monotonic())
        return {"backend": self.registry.backend, "modules": count}

    def modules(self, caller: str) -> dict[str, Any]:
        return {
            "modules": [module.describe() for module in self.registry.all()],
            "errors": self.registry.errors(),
        }


class EngineHandler(CatalogHandler):
    """Every operation: the catalogue from the registry, jobs from the engine."""

    def __init__(self, registry: ModuleRegistry, engine: Engine) -> None:
        super().__init__(registry)
        self.engine = engine

    def ping(self, caller: str) -> dict[str, Any]:
        return {**super().ping(caller), "name": self.engine.name, "health": self.engine.health()}

    def modules(self, caller: str) -> dict[str, Any]:
        self.engine.report_modules()  # what the console lists next is in the record already
        return super().modules(caller)

    def submit(self, caller: str, **request: Any) -> int:
        return self.engine.submit(caller, request)

    def job(self, caller: str, *, job_id: int, cursor: int) -> dict[str, Any]:
        return self.engine.state(job_id, cursor)

    def wait(self, caller: str, *, job_id: int, timeout: float) -> dict[str, Any]:
        return self.engine.wait(job_id, min(timeout, MAX_WAIT))

    def cancel(self, caller: str, *, job_id: int) -> dict[str, Any]:
        return self.engine.cancel(job_id)

    def run(self, caller: str, *, wait: float, **request: Any) -> dict[str, Any]:
        return self.engine.wait(self.engine.submit(caller, request), min(wait, MAX_WAIT))
