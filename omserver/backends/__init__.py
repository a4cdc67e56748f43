"""Execution backends, chosen by name from ``daemon.backend``.

The names are :data:`omserver.vocabulary.BACKENDS`; the adapter for ``<name>``
is ``ADAPTER`` in ``omserver.backends.<name>``, imported only when asked for
(Salt and Ansible each take a second or so to import).
"""

from __future__ import annotations

import importlib

from omserver.backends.base import Backend, Emit
from omserver.config import Config
from omserver.vocabulary import BACKENDS


def backend_class(name: str) -> type[Backend]:
    """The adapter class for backend ``name``; ValueError for an unknown name."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
    return importlib.import_module(f"omserver.backends.{name}").ADAPTER


def make_backend(config: Config, name: str | None = None) -> Backend:
    """The configured backend (or ``name``), ready to run steps."""
    return backend_class(name or config["daemon.backend"])(config)


__all__ = ["Backend", "Emit", "backend_class", "make_backend"]
