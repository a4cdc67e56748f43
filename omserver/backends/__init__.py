"""Execution backends, chosen by name from ``daemon.backend``.

The map names a module path rather than a class so that only the backend in
use is imported (Salt and Ansible each take a second or so to import).
"""

from __future__ import annotations

import importlib

from omserver.backends.base import Backend, Emit
from omserver.config import Config

BACKENDS: dict[str, str] = {
    "saltstack": "omserver.backends.saltstack:SaltBackend",
    "ansible": "omserver.backends.ansible:AnsibleBackend",
}


def backend_class(name: str) -> type[Backend]:
    """The adapter class registered as ``name``; ValueError for an unknown name."""
    try:
        module_name, _, class_name = BACKENDS[name].partition(":")
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}") from None
    return getattr(importlib.import_module(module_name), class_name)


def make_backend(config: Config, name: str | None = None) -> Backend:
    """The configured backend (or ``name``), ready to run steps."""
    return backend_class(name or config["daemon.backend"])(config)


__all__ = ["BACKENDS", "Backend", "Emit", "backend_class", "make_backend"]
