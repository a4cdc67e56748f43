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
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
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
                raise NoSuchModule(
                    f"no module {module_id}: no Mid_{module_id}.py in "
                    f"{self.root}/common or {self.root}/{self.backend}"
                )
            _, module, error = self._files[path]
            if module is None:
                raise NoSuchModule(f"module {module_id} cannot be loaded: {error}")
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
            module = inspect_file(path, module_id, self.load_timeout)
        except ModuleLoadError as exc:
            return None, str(exc)
        if self.backend not in module.backends:
            return None, (
                f"{path}:{line_of(path, 'BACKENDS')}: runs on "
                f"{', '.join(module.backends)}, not on {self.backend}"
            )
        return module, None


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
