"""A module dropped into the folder runs without a restart, and an edit is what runs next."""

from __future__ import annotations

from pathlib import Path

from omserver.jobs import execution
from omserver.modules.registry import ModuleRegistry
from omserver.sdk import HostResult
from tests.lab.fixtures import BackendLab

TEMPLATE = """NAME = "greeter"
CAPTION = "says {word}"


def run(ctx, params):
    ctx.cmd(["echo", "{word}"])
"""


def test_a_dropped_file_runs_and_an_edit_takes_effect(
    backend_lab: BackendLab, tmp_path: Path
) -> None:
    modules = tmp_path / "modules"
    (modules / "common").mkdir(parents=True)
    config = backend_lab.config()
    registry = ModuleRegistry(modules, backend_lab.backend)  # one registry: a running daemon

    def run() -> set[str]:
        module = registry.get(6001)
        results = execution.execute(module, backend_lab.targets, {}, config=config, timeout=30)
        return {f"{r.status}:{r.stdout}" for r in results if isinstance(r, HostResult)}

    path = modules / "common" / "Mid_6001.py"
    path.write_text(TEMPLATE.format(word="hello"))
    assert run() == {"ok:hello"}
    path.write_text(TEMPLATE.format(word="howdy"))  # same size, same clock tick
    assert registry.get(6001).caption == "says howdy"
    assert run() == {"ok:howdy"}
