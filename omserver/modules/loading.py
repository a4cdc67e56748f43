"""Imports one ``Mid_<id>.py`` and checks what it declares.

The file is imported with importlib from its path, never from bytecode, under
a name of its own. Whatever is wrong is a :class:`ModuleLoadError` whose
message starts with ``path:line:``, so the console can point at the line.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import inspect
import json
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from omserver.modules.legacy import adapt
from omserver.modules.metadata import LoadedModule
from omserver.sdk import SchemaError, check_schema
from omserver.vocabulary import BACKENDS


class ModuleLoadError(Exception):
    """A module file cannot be used; the message starts with ``path:line:``."""


def load_module_file(path: Path, module_id: int) -> LoadedModule:
    """Import one ``Mid_<id>.py`` and validate its metadata; :class:`ModuleLoadError` if bad."""
    python = _import(path, module_id)
    folder = path.parent.name
    legacy = not hasattr(python, "run") and inspect.isclass(getattr(python, "Modulehandle", None))
    if not legacy and not callable(getattr(python, "run", None)):
        raise ModuleLoadError(
            f"{path}:1: defines no run(ctx, params) function (nor a book-style class Modulehandle)"
        )
    default_name = f"Mid_{module_id}" if legacy else None
    name = _meta(python, path, "NAME", str, default_name)
    caption = _meta(python, path, "CAPTION", str, "" if legacy else None)
    params = _meta(python, path, "PARAMS", list, [])
    default_backends = list(BACKENDS) if folder == "common" else [folder]
    backends = _meta(python, path, "BACKENDS", list, default_backends)
    exclusive = _meta(python, path, "EXCLUSIVE", bool, False)
    settings = _meta(python, path, "SETTINGS", dict, {})
    if not name.strip():
        raise ModuleLoadError(f"{path}:{line_of(path, 'NAME')}: NAME must not be empty")
    try:
        check_schema(params)
    except SchemaError as exc:
        raise ModuleLoadError(f"{path}:{line_of(path, 'PARAMS')}: PARAMS: {exc}") from exc
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise ModuleLoadError(
            f"{path}:{line_of(path, 'BACKENDS')}: BACKENDS must list some of {', '.join(BACKENDS)}"
        )
    try:
        json.dumps(settings)
    except (TypeError, ValueError) as exc:
        raise ModuleLoadError(
            f"{path}:{line_of(path, 'SETTINGS')}: SETTINGS must be plain JSON data: {exc}"
        ) from exc
    if legacy:
        entry = adapt(python.Modulehandle, module_id, params)
    else:
        entry = python.run
        try:
            inspect.signature(entry).bind(None, None)
        except (TypeError, ValueError):
            line = getattr(getattr(entry, "__code__", None), "co_firstlineno", 1)
            raise ModuleLoadError(f"{path}:{line}: run must take (ctx, params)") from None
    return LoadedModule(
        module_id, name, caption, params, tuple(backends), exclusive, settings, path, legacy, entry
    )


def _import(path: Path, module_id: int) -> ModuleType:
    name = f"omserver_modules.{path.parent.name}.Mid_{module_id}"
    spec = importlib.util.spec_from_file_location(
        name, path, loader=_SourceOnlyLoader(name, str(path))
    )
    if spec is None or spec.loader is None:
        raise ModuleLoadError(f"{path}:1: cannot be imported")
    python = importlib.util.module_from_spec(spec)
    sys.modules[name] = python  # dataclasses and pickling look a module up by name
    try:
        spec.loader.exec_module(python)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        raise ModuleLoadError(f"{path}:{exc.lineno}: SyntaxError: {exc.msg}") from None
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
        line = frames[-1].lineno if frames else 1
        raise ModuleLoadError(f"{path}:{line}: {type(exc).__name__}: {exc}") from None
    return python


def _meta(python: ModuleType, path: Path, attr: str, kind: type, default: Any) -> Any:
    value = getattr(python, attr, default)
    if value is None:
        raise ModuleLoadError(f"{path}:1: missing {attr}")
    if not isinstance(value, kind):
        raise ModuleLoadError(f"{path}:{line_of(path, attr)}: {attr} must be a {kind.__name__}")
    return value


def line_of(path: Path, name: str) -> int:
    """Line where ``name`` is assigned at the top of the file, else 1."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return 1
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else ([node.target] if isinstance(node, ast.AnnAssign) else [])
        )
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return node.lineno
    return 1


class _SourceOnlyLoader(importlib.machinery.SourceFileLoader):
    """Compiles from the source every time: a cached .pyc is keyed on whole-second
    mtimes and size, so it could be stale after a quick edit (and the modules
    folder need not be writable)."""

    def path_stats(self, path: str) -> dict[str, Any]:
        raise OSError("task modules are never cached as bytecode")
