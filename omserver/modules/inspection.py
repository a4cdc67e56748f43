"""Loads a module file in a throw-away child process, for the daemon's registry.

A module file is Python someone dropped in a folder: its import may hang, end
its process or leave state behind. The registry therefore never imports it
itself: a child forked from the forkserver (:mod:`omserver.forkserver`) does,
and sends back the metadata or the error. One that takes over ``timeout`` is
killed and reported, and the daemon goes on.
"""

from __future__ import annotations

import os
from dataclasses import fields
from multiprocessing.connection import Connection
from pathlib import Path

from omserver import forkserver
from omserver.modules.loading import ModuleLoadError, load_module_file
from omserver.modules.metadata import LoadedModule


def inspect_file(path: Path, module_id: int, timeout: float) -> LoadedModule:
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
