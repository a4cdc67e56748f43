"""Finds the ``Mid_<id>.py`` task modules a daemon can run and keeps up with edits.

Like Salt's loader: a sorted scan of ``<modules_dir>/common`` then
``<modules_dir>/<backend>`` (a backend-specific file overrides the common one
with the same id), only names matching :data:`omserver.vocabulary.MODULE_FILE`.
A file that fails is recorded in :meth:`ModuleRegistry.errors` with its path
and line, and the others load. Every ``get``/``all`` re-stats the files (two
directory scans), so a new or edited file is picked up without a restart.

Each new or changed file is loaded in a child process
(:mod:`omserver.modules.inspection`); the job process imports the file again
to run it (:func:`omserver.modules.loading.load_module_file`).

Finding a file is not a licence to run it: :meth:`ModuleRegistry.reports` says
what the folder holds (each file's SHA-256, schema or load error), the engine
tells the record, and runs a module only once an operator enabled it there.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from omserver.modules.inspection import inspect_file
from omserver.modules.loading import ModuleLoadError, line_of
from omserver.modules.metadata import LoadedModule
from omserver.vocabulary import BACKENDS, MODULE_FILE

RACY = 2.0  # seconds: a file changed this recently is compared by content, not only by stat
LOAD_TIMEOUT = 10.0  # seconds a module file may take to import


class NoSuchModule(LookupError):  # noqa: N818 - says what the lookup found
    """No loadable ``Mid_<id>.py`` for this id; the message says why."""


@dataclass(frozen=True)
class _File:
    signature: tuple[Any, ...]
    module_id: int
    sha256: str
    module: LoadedModule | None
    error: str | None

    def report(self) -> dict[str, Any]:
        """What the record is told about the file (``Recorder.report_modules``)."""
        report: dict[str, Any] = {"id": self.module_id, "sha256": self.sha256}
        if self.module is None:
            return {**report, "error": self.error}
        return {
            **report,
            "error": "",
            "name": self.module.name,
            "caption": self.module.caption,
            "params": self.module.params,
            "backends": list(self.module.backends),
        }


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
        self._files: dict[Path, _File] = {}
        self._by_id: dict[int, Path] = {}
        self._version = 0  # counts the changes seen in the folder

    def get(self, module_id: int) -> LoadedModule:
        with self._lock:
            self._refresh()
            path = self._by_id.get(module_id)
            if path is None:
                raise NoSuchModule(
                    f"no module {module_id}: no Mid_{module_id}.py in "
                    f"{self.root}/common or {self.root}/{self.backend}"
                )
            found = self._files[path]
            if found.module is None:
                raise NoSuchModule(f"module {module_id} cannot be loaded: {found.error}")
            return found.module

    def all(self) -> list[LoadedModule]:
        with self._lock:
            self._refresh()
            loaded = (self._files[path].module for path in self._by_id.values())
            return sorted((m for m in loaded if m is not None), key=lambda m: m.id)

    def errors(self) -> dict[str, str]:
        """``{path: "path:line: what is wrong"}`` for every file that cannot be used."""
        with self._lock:
            self._refresh()
            return {str(path): f.error for path, f in self._files.items() if f.error}

    def reports(self) -> tuple[int, list[dict[str, Any]]]:
        """The file each id runs from, as the record is told about it, with a version
        that changes whenever any of them does (so that unchanged files are told once)."""
        with self._lock:
            self._refresh()
            files = [self._files[path] for _, path in sorted(self._by_id.items())]
            return self._version, [f.report() for f in files]

    def _refresh(self) -> None:
        found: dict[int, Path] = {}
        for folder in ("common", self.backend):  # later folders override earlier ones
            for module_id, path in _scan(self.root / folder):
                found[module_id] = path
        live = set(found.values())
        for path in list(self._files):
            if path not in live:
                del self._files[path]
                self._version += 1
        for module_id, path in list(found.items()):
            try:
                signature = _signature(path)
            except FileNotFoundError:  # removed between the scan and now
                del found[module_id]
                continue
            cached = self._files.get(path)
            if cached is None or cached.signature != signature:
                self._files[path] = self._load(path, module_id, signature)
                self._version += 1
        if found != self._by_id:
            self._version += 1
        self._by_id = found

    def _load(self, path: Path, module_id: int, signature: tuple[Any, ...]) -> _File:
        if not path.resolve().is_relative_to(self.root):
            error = f"{path}:1: resolves outside {self.root}; not loaded"
            return _File(signature, module_id, "", None, error)
        try:
            sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
            module = inspect_file(path, module_id, self.load_timeout)
        except OSError as exc:
            return _File(signature, module_id, "", None, f"{path}:1: cannot be read: {exc}")
        except ModuleLoadError as exc:
            return _File(signature, module_id, sha256, None, str(exc))
        if self.backend not in module.backends:
            error = (
                f"{path}:{line_of(path, 'BACKENDS')}: runs on "
                f"{', '.join(module.backends)}, not on {self.backend}"
            )
            return _File(signature, module_id, sha256, None, error)
        return _File(signature, module_id, sha256, replace(module, sha256=sha256), None)


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
