"""Runs one module for one job in a child process and streams each host's result.

A module is Python someone dropped in a folder: it may hang, crash or leak.
So each job runs it in a child process forked from a ``multiprocessing``
forkserver that imported Salt and Ansible once (a job starts in milliseconds,
and the multi-threaded daemon itself is never forked). The child sends every
:class:`HostResult` over a pipe as it happens; :func:`execute` yields them.

Semantics the daemon relies on (it upserts one row per job and host):

* each step's result for a host is yielded when that host finishes, and a
  later one for the same host replaces it;
* a host that failed a step keeps that failure (it is left out of later steps);
* when the module returns, a host it never touched ends ``failed``;
* at the timeout, on cancel, or if the module raises or its process dies, the
  child is killed and every host without a failure gets a final result:
  ``timeout``, ``failed`` "cancelled", or ``failed`` with the error.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import threading
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from omserver.config import Config
from omserver.loader import LoadedModule, load_module_file
from omserver.sdk import MASK, HostResult, ModuleError, ParamError, Target, sensitive_values

__all__ = ["ParamError", "execute", "warm_up"]

log = logging.getLogger("omserver.execution")
# Imported once by the forkserver, so a job's child starts with them loaded. Beyond
# the backends, Salt and Ansible import these lazily on their first call: left out,
# each job would pay ~0.1 s (Salt) and ~0.3 s (Ansible) to import them again.
PRELOAD = [
    "omserver.execution",
    "omserver.backends.saltstack",
    "salt.master",
    "salt.transport.tcp",
    "salt.transport.zeromq",
    "omserver.backends.ansible",
    "ansible.executor.process.worker",
    "ansible.executor.task_executor",
    "ansible.plugins.action.command",
    "ansible.plugins.action.copy",
    "ansible.plugins.action.service",
    "ansible.plugins.connection.local",
    "ansible.plugins.connection.ssh",
    "ansible.plugins.shell.sh",
    "ansible.plugins.strategy.linear",
]
KILL_GRACE = 2.0  # seconds between SIGTERM (lets Ansible stop its workers) and SIGKILL
POLL = 0.1  # how often a waiting job looks at its cancel flag


@dataclass(frozen=True)
class _Job:
    path: str
    module_id: int
    targets: list[dict[str, Any]]
    params: dict[str, Any]
    config: Config
    timeout: float
    secrets: list[str]


def _context() -> Any:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def warm_up() -> None:
    """Start the forkserver now, so the first job does not wait for Salt/Ansible imports."""
    _context()
    multiprocessing.forkserver.ensure_running()


def execute(
    module: LoadedModule,
    targets: Sequence[Target],
    params: Mapping[str, Any],
    *,
    config: Config,
    timeout: float,
    cancel: threading.Event | None = None,
) -> Iterator[HostResult]:
    """Run ``module`` on ``targets`` with validated ``params``; yield results as they come.

    Closing the iterator early kills the child as well.
    """
    secrets = sensitive_values(module.params, params)
    job = _Job(
        str(module.path),
        module.id,
        [t.to_dict() for t in targets],
        dict(params),
        config,
        timeout,
        secrets,
    )
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child_main, args=(sender, job), name=f"omserver-Mid_{module.id}", daemon=False
    )
    started = time.monotonic()
    deadline = started + timeout
    latest: dict[str, HostResult] = {}
    ending: tuple[str, str] | None = None  # (status, message) for hosts left open
    child.start()
    sender.close()
    try:
        while True:
            if cancel is not None and cancel.is_set():
                ending = ("failed", "cancelled")
                break
            left = deadline - time.monotonic()
            if left <= 0:
                ending = ("timeout", f"stopped at the job's {timeout:g} s timeout")
                break
            if not receiver.poll(min(left, POLL)):
                continue
            try:
                kind, payload = receiver.recv()
            except EOFError:
                child.join(1)
                ending = ("failed", f"the module's process died (exit code {child.exitcode})")
                break
            if kind == "result":
                result = HostResult.from_dict(payload)
                latest[result.host] = result
                yield result
            elif kind == "log":
                logging.getLogger(payload[0]).log(payload[1], "%s", payload[2])
            elif kind == "error":
                ending = ("failed", payload)
                break
            else:  # "done"
                break
    finally:
        _stop(child, clean=ending is None)
        receiver.close()
    yield from _close_out(targets, latest, ending, time.monotonic() - started)


def _close_out(
    targets: Sequence[Target],
    latest: dict[str, HostResult],
    ending: tuple[str, str] | None,
    elapsed: float,
) -> Iterator[HostResult]:
    for target in targets:
        last = latest.get(target.hostname)
        if ending is None:
            if last is None:
                yield HostResult(
                    target.hostname,
                    "failed",
                    duration=elapsed,
                    stderr="the module ran no step on this host",
                )
        elif last is None or last.ok:
            status, message = ending
            yield HostResult(
                target.hostname,
                status,
                None,
                last.stdout if last else "",
                message,
                elapsed,
                last.truncated if last else False,
            )


def _stop(child: multiprocessing.process.BaseProcess, *, clean: bool) -> None:
    """Reap a child that finished; kill one that did not, with everything it started."""
    if clean:
        child.join(5)
        if child.exitcode is not None:
            return
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(child.pid, sig)  # the child leads its own session: see _child_main
        except ProcessLookupError:
            if child.exitcode is None:
                child.kill()
        child.join(wait)
        if child.exitcode is not None:
            break
    try:  # leftovers in the group (ssh, a module's own subprocesses)
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# -- in the child ------------------------------------------------------------------


class _PipeLog(logging.Handler):
    """Sends the module's log records to the daemon, secrets masked."""

    def __init__(self, conn: Connection, secrets: list[str]) -> None:
        super().__init__()
        self._conn = conn
        self._secrets = secrets

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._conn.send(
                ("log", (record.name, record.levelno, _mask(record.getMessage(), self._secrets)))
            )
        except Exception:  # never let logging break a job
            self.handleError(record)


def _child_main(conn: Connection, job: _Job) -> None:
    os.setsid()  # one process group to kill: the module, its subprocesses, Ansible's ssh
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # stray print()s (Salt prints some) must not reach the daemon's output
    os.close(devnull)
    config = job.config
    if config["daemon.backend"] == "saltstack":  # book-style modules call LocalClient()
        os.environ["SALT_MASTER_CONFIG"] = config["salt.master_config"]
    root = logging.getLogger()
    root.handlers[:] = [_PipeLog(conn, job.secrets)]
    root.setLevel(logging.WARNING)  # Salt and Ansible chatter stays here
    module_log = logging.getLogger(f"omserver.module.{job.module_id}")
    module_log.setLevel(logging.INFO)
    try:
        _run_module(conn, job, module_log)
    except BaseException as exc:  # anything the module does wrong ends its hosts, not us
        module_log.error("%s", _mask(traceback.format_exc(), job.secrets))
        conn.send(("error", _mask(_describe(exc, job.path), job.secrets)))
    else:
        conn.send(("done", None))
    finally:
        conn.close()


def _run_module(conn: Connection, job: _Job, module_log: logging.Logger) -> None:
    from omserver.backends import make_backend
    from omserver.sdk import Context

    module = load_module_file(Path(job.path), job.module_id)
    settings = module.configured_settings(job.config)
    backend = make_backend(job.config)
    try:
        ctx = Context(
            backend,
            [Target(**t) for t in job.targets],
            params=job.params,
            settings=settings,
            deadline=time.monotonic() + job.timeout,
            output_limit=job.config["modules.output_limit"],
            emit=lambda result: conn.send(("result", result.to_dict())),
            secrets=job.secrets,
            log=module_log,
        )
        module.entry(ctx, job.params)
    finally:
        backend.close()


def _describe(exc: BaseException, path: str) -> str:
    if isinstance(exc, ModuleError):
        return str(exc)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
    where = f" ({Path(path).name} line {frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _mask(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text
