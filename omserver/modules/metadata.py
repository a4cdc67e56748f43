"""A validated task module: its declared metadata and, where it runs, its entry point."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omserver.config import Config
from omserver.sdk import ModuleError


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
    sha256: str = ""  # of the file the registry loaded: what an operator enables

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
            "sha256": self.sha256,
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
