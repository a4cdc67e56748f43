"""Finds, imports and validates ``Mid_<id>.py`` task modules.

Like Salt's loader: a sorted scan of ``<modules_dir>/common`` then
``<modules_dir>/<backend>`` (a backend-specific file overrides the common one
with the same id), only names matching ``Mid_<digits>.py``, each file imported
with importlib from its path. A file that fails is recorded in
:meth:`ModuleRegistry.errors` with its path and line, and the others load.
Every ``get``/``all`` re-stats the files (two directory scans), so a new or
edited file is picked up without a restart.

The registry never runs a module's code in its own process: each new or
changed file is imported in a child forked for it (:mod:`omserver.forkserver`),
which sends back the metadata or the error. A file that hangs at import is
killed after ``LOAD_TIMEOUT``, one that ends its process is reported, and
neither takes the daemon with it. The job process imports the file again to
run it (:func:`load_module_file`).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.machinery
import importlib.util
import inspect
import json
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any

from omserver import forkserver
from omserver.backends import BACKENDS
from omserver.config import Config
from omserver.sdk import ModuleError, SchemaError, check_schema

MODULE_FILE = re.compile(r"Mid_([1-9][0-9]{0,8})\.py")
RACY = 2.0  # seconds: a file changed this recently is compared by content, not only by stat
LOAD_TIMEOUT = 10.0  # seconds a module file may take to import


class UnknownModule(LookupError):  # noqa: N818 - the name the daemon and clients use
    """No loadable ``Mid_<id>.py`` for this id; the message says why."""


class ModuleLoadError(Exception):
    """A module file cannot be used; the message starts with ``path:line:``."""


@dataclass(frozen=True, eq=False)
class LoadedModule:
    """A validated module: its metadata, and (in the job's process) the callable to run."""

    id: int
    name: str
    caption: str
    params: list[dict[str, Any]]
    backends: tuple[str, ...]
    exclusive: bool
    settings: dict[str, Any]
    path: Path
    legacy: bool
    entry: Callable[..., Any] | None = field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        """JSON-ready metadata for the console and API."""
        return {
            "id": self.id,
            "name": self.name,
            "caption": self.caption,
            "params": self.params,
            "backends": list(self.backends),
            "exclusive": self.exclusive,
            "settings": self.settings,
            "path": str(self.path),
            "legacy": self.legacy,
        }

    def configured_settings(self, config: Config) -> dict[str, Any]:
        """``SETTINGS`` overridden by the operator's ``[module.<id>]`` table.

        A table-valued setting is merged key by key. An unknown key, or a
        value of another type than the default, is a :class:`ModuleError`,
        so a typo never silently falls back.
        """
        values = dict(self.settings)
        for key, value in config.module_settings(self.id).items():
            if key not in values:
                known = ", ".join(sorted(values)) or "none"
                raise ModuleError(f"[module.{self.id}] {key}: unknown setting (known: {known})")
            default = values[key]
            if isinstance(default, dict) and isinstance(value, dict):
                value = {**default, **value}  # a table adds to or overrides the defaults
            if (
                default is not None
                and not isinstance(value, type(default))
                and not (isinstance(default, float) and isinstance(value, int))
            ):
                raise ModuleError(
                    f"[module.{self.id}] {key}: expected "
                    f"{type(default).__name__} like the default {default!r}"
                )
            values[key] = value
        return values


class ModuleRegistry:
    """The modules a daemon running ``backend`` can run, kept in step with the folder."""

    def __init__(
        self, modules_dir: str | Path, backend: str, *, load_timeout: float = LOAD_TIMEOUT
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}")
        self.root = Path(modules_dir).resolve()
        self.backend = backend
        self.load_timeout = load_timeout
        self._lock = threading.Lock()
        # path -> (signature, module or None, error or None)
        self._files: dict[Path, tuple[tuple[Any, ...], LoadedModule | None, str | None]] = {}
        self._by_id: dict[int, Path] = {}

    def get(self, module_id: int) -> LoadedModule:
        with self._lock:
            self._refresh()
            path = self._by_id.get(module_id)
            if path is None:
                raise UnknownModule(
                    f"no module {module_id}: no Mid_{module_id}.py in "
                    f"{self.root}/common or {self.root}/{self.backend}"
                )
            _, module, error = self._files[path]
            if module is None:
                raise UnknownModule(f"module {module_id} cannot be loaded: {error}")
            return module

    def all(self) -> list[LoadedModule]:
        with self._lock:
            self._refresh()
            loaded = (self._files[path][1] for path in self._by_id.values())
            return sorted((m for m in loaded if m is not None), key=lambda m: m.id)

    def errors(self) -> dict[str, str]:
        """``{path: "path:line: what is wrong"}`` for every file that cannot be used."""
        with self._lock:
            self._refresh()
            return {str(path): error for path, (_, _, error) in self._files.items() if error}

    def _refresh(self) -> None:
        found: dict[int, Path] = {}
        for folder in ("common", self.backend):  # later folders override earlier ones
            for module_id, path in _scan(self.root / folder):
                found[module_id] = path
        live = set(found.values())
        for path in list(self._files):
            if path not in live:
                del self._files[path]
        for module_id, path in list(found.items()):
            try:
                signature = _signature(path)
            except FileNotFoundError:  # removed between the scan and now
                del found[module_id]
                continue
            cached = self._files.get(path)
            if cached is None or cached[0] != signature:
                self._files[path] = (signature, *self._load(path, module_id))
        self._by_id = found

    def _load(self, path: Path, module_id: int) -> tuple[LoadedModule | None, str | None]:
        if not path.resolve().is_relative_to(self.root):
            return None, f"{path}:1: resolves outside {self.root}; not loaded"
        try:
            module = _inspect(path, module_id, self.load_timeout)
        except ModuleLoadError as exc:
            return None, str(exc)
        if self.backend not in module.backends:
            return None, (
                f"{path}:{_line_of(path, 'BACKENDS')}: runs on "
                f"{', '.join(module.backends)}, not on {self.backend}"
            )
        return module, None


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
        raise ModuleLoadError(f"{path}:{_line_of(path, 'NAME')}: NAME must not be empty")
    try:
        check_schema(params)
    except SchemaError as exc:
        raise ModuleLoadError(f"{path}:{_line_of(path, 'PARAMS')}: PARAMS: {exc}") from exc
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise ModuleLoadError(
            f"{path}:{_line_of(path, 'BACKENDS')}: BACKENDS must list some of {', '.join(BACKENDS)}"
        )
    try:
        json.dumps(settings)
    except (TypeError, ValueError) as exc:
        raise ModuleLoadError(
            f"{path}:{_line_of(path, 'SETTINGS')}: SETTINGS must be plain JSON data: {exc}"
        ) from exc
    if legacy:
        from omserver.legacy import adapt

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


def _inspect(path: Path, module_id: int, timeout: float) -> LoadedModule:
    """:func:`load_module_file` in a child process; the module without its ``entry``."""
    context = forkserver.context()
    ours, theirs = context.Pipe(duplex=False)
    child = context.Process(target=_inspect_child, args=(theirs, path, module_id), daemon=True)
    child.start()
    theirs.close()
    try:
        if not ours.poll(timeout):
            raise ModuleLoadError(f"{path}:1: importing it took over {timeout:g} s; not loaded")
        kind, payload = ours.recv()
    except EOFError:
        child.join(1)
        raise ModuleLoadError(
            f"{path}:1: importing it ended its process (exit code {child.exitcode})"
        ) from None
    finally:
        ours.close()
        if child.is_alive():
            child.kill()
        child.join()
    if kind == "error":
        raise ModuleLoadError(payload)
    return LoadedModule(**payload, path=path)


def _inspect_child(conn: Connection, path: Path, module_id: int) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # a module's print() at import is not the daemon's output
    os.close(devnull)
    try:
        module = load_module_file(path, module_id)
    except ModuleLoadError as exc:
        conn.send(("error", str(exc)))
        return
    metadata = {f.name: getattr(module, f.name) for f in fields(LoadedModule)}
    del metadata["path"], metadata["entry"]
    conn.send(("ok", metadata))


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
        raise ModuleLoadError(f"{path}:{_line_of(path, attr)}: {attr} must be a {kind.__name__}")
    return value


def _line_of(path: Path, name: str) -> int:
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


def _scan(folder: Path) -> list[tuple[int, Path]]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    return [
        (int(match.group(1)), Path(entry.path))
        for entry in entries
        if (match := MODULE_FILE.fullmatch(entry.name)) and entry.is_file()
    ]


def _signature(path: Path) -> tuple[Any, ...]:
    """What tells an edit: the stat, plus the content for a file changed in the last
    seconds (file times are coarse, so two quick writes of one size can share them)."""
    stat = path.stat()
    signature: tuple[Any, ...] = (stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size, stat.st_ino)
    if time.time() - stat.st_mtime < RACY:
        signature += (hashlib.sha256(path.read_bytes()).digest(),)
    return signature


class _SourceOnlyLoader(importlib.machinery.SourceFileLoader):
    """Compiles from the source every time: a cached .pyc is keyed on whole-second
    mtimes and size, so it could be stale after a quick edit (and the modules
    folder need not be writable)."""

    def path_stats(self, path: str) -> dict[str, Any]:
        raise OSError("task modules are never cached as bytecode")
