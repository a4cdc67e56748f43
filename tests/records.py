"""Reading a job's state (from the daemon or the REST API) the way a test asks about it,
and enabling the modules tests run, as an operator's review would."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from omserver.config import BASE_DIR
from omserver.modules.metadata import LoadedModule
from omserver.modules.registry import ModuleRegistry
from omserver.vocabulary import BACKENDS

# The folders the tests' daemons load modules from (tests/lab/fixtures.modules_folder…).
MODULE_FOLDERS = (
    BASE_DIR / "modules",
    Path(__file__).parent / "engine_modules",
    Path(__file__).parent / "fixtures_modules",
)


@functools.cache
def tested_modules() -> tuple[LoadedModule, ...]:
    """Every module the tests run (shipped, engine and fixture modules), loaded once."""
    found: dict[int, LoadedModule] = {}
    for folder in MODULE_FOLDERS:
        for backend in BACKENDS:
            for module in ModuleRegistry(folder, backend).all():
                found.setdefault(module.id, module)
    return tuple(sorted(found.values(), key=lambda m: m.id))


def enabled_row(module: LoadedModule) -> dict[str, Any]:
    """The module's record once an operator enabled its file (the fields a report and the
    enable action write)."""
    return {
        "name": module.name[:100],
        "caption": module.caption,
        "backends": list(module.backends),
        "params_schema": module.params,
        "file_schema": module.params,
        "file_hash": module.sha256,
        "load_error": "",
        "enabled": True,
        "schema_changed": False,
        "enabled_hash": module.sha256,
        "enabled_by": "tests",
    }


def approve(*modules: int | LoadedModule) -> None:
    """Enable modules (by id among :func:`tested_modules`, or loaded) in Django's database."""
    from django.utils import timezone

    from omserverweb.modules.models import ModuleDefinition

    by_id = {m.id: m for m in tested_modules()}
    for module in modules:
        loaded = by_id[module] if isinstance(module, int) else module
        ModuleDefinition.objects.update_or_create(
            pk=loaded.id, defaults={**enabled_row(loaded), "enabled_at": timezone.now()}
        )


def steps_of(state: dict[str, Any], host: str) -> list[dict[str, Any]]:
    """The host's step rows, in step order."""
    return sorted((s for s in state["steps"] if s["host"] == host), key=lambda s: s["number"])


def stdout_of(state: dict[str, Any], host: str) -> str:
    """What the host's steps printed on stdout, step after step."""
    return "".join(step["stdout"] for step in steps_of(state, host))


def hosts_of(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Host -> its row."""
    return {row["host"]: row for row in state["results"]}
