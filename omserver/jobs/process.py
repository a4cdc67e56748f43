"""The inside of a job process: make the backend, then run jobs one at a time.

Started by :mod:`omserver.jobs.execution` from its forkserver *before* a job comes,
so that Salt's or Ansible's per-process set-up is already done when it does.
After a job that ended cleanly the process waits for the next one; after one
that raised it exits, and the daemon kills it when it hangs. Each job's module
file is imported afresh, so nothing of a module's state carries over.
Everything goes back over one pipe as ``(kind, payload)`` messages, in order:
``("step", (number, action, hosts, started))`` as a step starts,
``("output", [(host, step, stream, text), …])`` with what steps printed (sent
in batches, at most every ``OUTPUT_EVERY`` seconds, and always before any other
message), ``("result", HostResult dict)`` as a host ends a step,
``("published", (jid, hosts, step note))`` as a backend hands a step to its
engine (see ``Backend.on_publish``), ``("log", (logger, level, text))``, then
``("done", None)`` or ``("error", message)``. Sensitive values are masked here, before anything
leaves the process.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from omserver.backends import Backend, make_backend
from omserver.config import Config
from omserver.jobs import journal
from omserver.modules.loading import load_module_file
from omserver.sdk import MASK, Context, ModuleError, Target
from omserver.sdk.steps import Step, step_note

OUTPUT_EVERY = 0.2  # seconds: how long live output may wait to be batched


@dataclass(frozen=True)
class JobOrder:
    """What a job process needs to run one module (the config came with the process)."""

    path: str
    module_id: int
    targets: list[dict[str, Any]]
    params: dict[str, Any]
    timeout: float
    secrets: list[str]
    journal: str | None = None  # where to journal what it does (see omserver.jobs.journal)


class _Outbox:
    """The pipe to the daemon, shared by the module's thread, a backend's reader
    threads and logging: messages go in order, live output in batches before them.

    While a job runs, each message but log records goes to its journal first (see
    :mod:`omserver.jobs.journal`); once the daemon is gone, only there.
    Processes forked from the job's (Ansible's workers) inherit it, maybe with
    its lock held: there it sends nothing.
    """

    def __init__(self, conn: Connection) -> None:
        self._pid = os.getpid()
        self._conn = conn
        self._lock = threading.Lock()
        self._output: list[tuple[str, int, str, str]] = []
        self._journal: journal.Writer | None = None
        self._orphaned = False  # the daemon went away: the journal alone goes on
        threading.Thread(target=self._flush_now_and_then, name="outbox", daemon=True).start()

    def begin(self, writer: journal.Writer) -> None:
        with self._lock:
            self._journal = writer

    def end(self) -> None:
        with self._lock:
            self._flush()
            if self._journal is not None:
                self._journal.close()
            self._journal = None

    def send(self, kind: str, payload: Any) -> None:
        if os.getpid() != self._pid:
            return
        with self._lock:
            self._flush()
            self._deliver(kind, payload)

    def output(self, host: str, step: int, stream: str, text: str) -> None:
        if os.getpid() != self._pid:
            return
        with self._lock:
            self._output.append((host, step, stream, text))

    def _deliver(self, kind: str, payload: Any) -> None:
        if self._journal is not None and kind != "log":
            self._journal.write(kind, payload)
        if not self._orphaned:
            try:
                self._conn.send((kind, payload))
            except OSError:  # the daemon died: a restarted one adopts the job by its journal
                self._orphaned = True

    def _flush(self) -> None:
        if self._output:
            batch, self._output = self._output, []
            self._deliver("output", batch)

    def _flush_now_and_then(self) -> None:
        while True:
            time.sleep(OUTPUT_EVERY)
            try:
                with self._lock:
                    self._flush()
            except OSError:  # the journal's disk failed: what is left goes with the end
                return


class _Noting(Backend):
    """The job's backend, sending where each step was published (Salt: its jid) with
    what a restarted daemon needs to read its results back (``Backend.on_publish``)."""

    def __init__(self, inner: Backend, outbox: _Outbox) -> None:
        super().__init__(inner.config)
        self.name = inner.name
        self._inner = inner
        self._outbox = outbox

    def run(self, step: Step, targets: Sequence[Target], **kwargs: Any) -> None:
        note = step_note(step)
        self._inner.on_publish = lambda jid, hosts: self._outbox.send(
            "published", (jid, hosts, note)
        )
        self._inner.run(step, targets, **kwargs)

    def close(self) -> None:
        self._inner.close()


class _PipeLog(logging.Handler):
    """Sends log records to the daemon, secrets masked."""

    def __init__(self, outbox: _Outbox) -> None:
        super().__init__()
        self.outbox = outbox
        self.secrets: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = mask(record.getMessage(), self.secrets)
            self.outbox.send("log", (record.name, record.levelno, text))
        except Exception:  # never let logging break a job
            self.handleError(record)


def main(conn: Connection, config: Config) -> None:
    """The job process's entry point (see the module docstring)."""
    os.setsid()  # one process group to kill: the module, its subprocesses, Ansible's ssh
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # stray print()s (Salt prints some) must not reach the daemon's output
    os.close(devnull)
    if config["daemon.backend"] == "saltstack":  # book-style modules call LocalClient()
        os.environ["SALT_MASTER_CONFIG"] = config["salt.master_config"]
    outbox = _Outbox(conn)
    handler = _PipeLog(outbox)
    logging.getLogger().handlers[:] = [handler]
    logging.getLogger().setLevel(logging.WARNING)  # Salt and Ansible chatter stays here
    try:
        backend: Backend | None = make_backend(config)
    except Exception:  # e.g. no salt master yet: try again when the job comes, and report it
        backend = None
    try:
        while True:
            try:
                job: JobOrder = conn.recv()
            except (EOFError, ConnectionResetError):  # the daemon is done with us, or died
                return
            handler.secrets = job.secrets
            backend = backend or make_backend(config)
            if not _run_one(outbox, config, job, backend):
                return
            handler.secrets = []
    finally:
        if backend is not None:
            backend.close()
        conn.close()


def _run_one(outbox: _Outbox, config: Config, job: JobOrder, backend: Backend) -> bool:
    """Run ``job``; True when it ended cleanly and the process may take another."""
    module_log = logging.getLogger(f"omserver.module.{job.module_id}")
    module_log.setLevel(logging.INFO)
    if job.journal:
        writer = journal.Writer(Path(job.journal))
        writer.begin([t["hostname"] for t in job.targets], time.time() + job.timeout)
        outbox.begin(writer)
    try:
        return _run_module(outbox, config, job, backend, module_log)
    finally:
        outbox.end()


def _run_module(
    outbox: _Outbox, config: Config, job: JobOrder, backend: Backend, module_log: logging.Logger
) -> bool:
    try:
        module = load_module_file(Path(job.path), job.module_id)
        ctx = Context(
            _Noting(backend, outbox),
            [Target(**t) for t in job.targets],
            params=job.params,
            settings=module.configured_settings(config),
            deadline=time.monotonic() + job.timeout,
            output_limit=config["modules.output_limit"],
            emit=lambda result: outbox.send("result", result.to_dict()),
            announce=lambda *step: outbox.send("step", (*step, time.time())),
            output=outbox.output if config["modules.live_output"] else None,
            secrets=job.secrets,
            log=module_log,
        )
        module.entry(ctx, job.params)
    except BaseException as exc:  # anything the module does wrong ends its hosts, not us
        module_log.error("%s", mask(traceback.format_exc(), job.secrets))
        outbox.send("error", mask(_describe(exc, job.path), job.secrets))
        return False
    outbox.send("done", None)
    return True


def _describe(exc: BaseException, path: str) -> str:
    if isinstance(exc, ModuleError):
        return str(exc)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
    where = f" ({Path(path).name} line {frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def mask(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text
