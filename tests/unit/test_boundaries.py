"""The import boundaries hold: the daemon package never imports the web, and the
client reaches the daemon only through the protocol."""

from __future__ import annotations

import ast
from pathlib import Path

from omserver.config import BASE_DIR

PACKAGE = BASE_DIR / "omserver"


def imports_of(path: Path) -> set[str]:
    """Every module name ``path`` imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def source_of(module: str) -> Path | None:
    parts = module.split(".")
    for candidate in (BASE_DIR.joinpath(*parts).with_suffix(".py"), BASE_DIR.joinpath(*parts)):
        if candidate.is_file():
            return candidate
        if (candidate / "__init__.py").is_file():
            return candidate / "__init__.py"
    return None


def reachable_from(module: str) -> set[str]:
    """The ``omserver`` modules ``module`` imports, directly or through others."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        path = source_of(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        todo.extend(n for n in imports_of(path) if n.split(".")[0] == "omserver")
    return {name for name in seen if source_of(name) is not None}


def test_the_daemon_package_imports_nothing_from_the_web() -> None:
    offenders = {
        str(path.relative_to(BASE_DIR)): sorted(n for n in imports_of(path) if "omserverweb" in n)
        for path in PACKAGE.rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_client_depends_on_the_protocol_not_on_the_daemon() -> None:
    reached = reachable_from("omserver.client")
    assert "omserver.protocol.wire" in reached  # the walk does find imports
    assert sorted(n for n in reached if n.startswith(("omserver.daemon", "omserver.jobs"))) == []
