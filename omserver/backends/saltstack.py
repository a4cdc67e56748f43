"""The SaltStack backend: ``salt.client.LocalClient`` on the salt master.

One publish per step to the listed minions (``tgt_type='list'``), returns read
as they arrive (``get_iter_returns`` without blocking, so the step deadline is
checked between events). A minion that never answers is reported
``unreachable``; one still busy at the deadline, ``timeout``.

A Command step runs as ``omserver_stream.run``, our execution module (the file
:mod:`omserver.backends.capture`, served from ``<file_roots>/_modules``): the
minion fires the output to the master's event bus under
``omserver/output/<jid>`` as it is printed, and the backend hands it to
``output`` between returns. A minion without the module, or with an older
copy, is synced (``saltutil.sync_modules``) and runs the step once more.
Without an ``output`` (live output switched off) a Command step is Salt's
plain ``cmd.run_all``.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import salt.client
import salt.config
import salt.utils.jid
import salt.utils.master
from salt.exceptions import SaltClientError

from omserver.backends import capture
from omserver.backends.base import Backend, Emit, Output
from omserver.backends.capture import STREAMS
from omserver.config import Config
from omserver.sdk import HostResult, Target, cap_output
from omserver.sdk.steps import Command, Copy, Service, Step

# Salt swaps a value that would make an event bigger than max_event_size (default
# 1 MiB) for this string: set it above twice modules.output_limit on master and minions.
TRIMMED = "VALUE_TRIMMED"
TRIMMED_NOTE = "Salt dropped this output: it is larger than max_event_size allows"
# What cmd.run_all leaves in stdout when the minion killed the command at its timeout.
SALT_TIMED_OUT = re.compile(r" : Timed out after \d+ seconds\Z")
MODULE = "omserver_stream"  # capture.py's __virtualname__
FUNCTION = f"{MODULE}.run"
NOT_AVAILABLE = f"'{FUNCTION}' is not available."  # what a minion without it returns
OUTPUT_TAG = "omserver/output"
RETURN_MARGIN = 0.5  # seconds a timed-out command's return gets to reach us before the deadline


class SaltBackend(Backend):
    name = "saltstack"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        opts = salt.config.client_config(config["salt.master_config"])
        opts["gather_job_timeout"] = config["salt.gather_job_timeout"]
        self._client = salt.client.LocalClient(mopts=opts)
        self._file_roots = Path(config["salt.file_roots"])
        self._check_after = float(config["salt.timeout"])
        self._digest = install_module(self._file_roots)

    def close(self) -> None:
        self._client.destroy()

    def run(
        self,
        step: Step,
        targets: Sequence[Target],
        *,
        timeout: float,
        output_limit: int,
        emit: Emit,
        output: Output | None,
    ) -> None:
        started = time.monotonic()
        # The master writes a new key when it restarts: a client made before (a
        # spare job process, a bench) reads it again rather than fail to publish.
        self._client.key = salt.utils.master.get_master_key(
            self._client.salt_user, self._client.opts
        )
        hosts = sorted({t.hostname for t in targets})
        missing = self._missing_source(step)
        if missing:
            for host in hosts:
                emit(HostResult(host, "failed", stderr=missing))
            return
        job = _Job(step, started, timeout, output_limit, emit, output)
        unsynced = self._publish(job, hosts, resync=True)
        if unsynced:
            self._sync(unsynced, started + timeout)
            self._publish(job, unsynced, resync=False)

    def _publish(self, job: _Job, hosts: list[str], *, resync: bool) -> list[str]:
        """Run the job's step on ``hosts`` and emit their results, except those that
        lack our module (or hold an older copy) when ``resync``: returned, to sync."""
        budget = job.deadline - time.monotonic()
        jid = salt.utils.jid.gen_jid(self._client.opts)
        tag = f"{OUTPUT_TAG}/{jid}" if job.streams else ""
        stream = {"limit": job.limit, "tag": tag, "digest": self._digest} if tag else None
        fun, kwarg = _call(job.step, budget, stream)
        # Salt asks silent minions whether they still run the job after this
        # long; a down minion is known after it plus gather_job_timeout.
        gather = float(self.config["salt.gather_job_timeout"])
        check_after = max(1.0, min(self._check_after, budget - gather - 0.5))
        events = self._client.event
        live = _LiveOutput(job.output, hosts)
        pending = set(hosts)
        unsynced: list[str] = []
        if tag:  # before the publish: the output events arrive among the returns
            events.subscribe(tag, match_type="startswith")
        try:
            try:
                pub = self._client.run_job(
                    hosts,
                    fun,
                    arg=(),
                    tgt_type="list",
                    timeout=check_after,
                    jid=jid,
                    kwarg=kwarg,
                    listen=True,
                )
            except SaltClientError as exc:
                pub, refused = {}, f"the salt master did not take the job: {exc}"
            else:
                refused = "no minion with this id has an accepted key on the salt master"
            if not pub:
                for host in hosts:
                    job.emit(HostResult(host, "unreachable", stderr=refused))
                return []
            try:
                # cmd_iter() would hide the idle ticks (None) that let us check the deadline
                returns = self._client.get_iter_returns(
                    pub["jid"],
                    pub["minions"],
                    timeout=check_after,
                    tgt_type="list",
                    expect_minions=True,
                    block=False,
                    gather_job_timeout=gather,
                )
                for ret in returns:
                    if tag:
                        self._drain(tag, live)
                    if ret is None:  # nothing arrived in the last 10 ms
                        if time.monotonic() >= job.deadline:
                            break
                        continue
                    for host, data in ret.items():
                        if host not in pending:
                            continue
                        pending.discard(host)
                        if tag and resync and _needs_sync(data):
                            unsynced.append(host)
                        else:
                            job.emit(live.settle(job.result(host, data), data))
                    if not pending:
                        break
            finally:  # what cmd_iter() does after its loop
                self._client._clean_up_subscriptions(pub["jid"])
        finally:
            if tag:
                events.unsubscribe(tag, match_type="startswith")
        elapsed = time.monotonic() - job.started
        late = elapsed >= job.timeout
        for host in sorted(pending):
            why = (
                f"no answer within the step's {job.timeout:.0f} s"
                if late
                else "the minion is not connected or has no accepted key"
            )
            status = "timeout" if late else "unreachable"
            job.emit(live.settle(HostResult(host, status, duration=elapsed, stderr=why), None))
        return unsynced

    def _drain(self, tag: str, live: _LiveOutput) -> None:
        """Hand on the output events get_iter_returns came across (it keeps those we
        subscribed to in ``pending_events``). Taken from there only: a read of the
        bus itself costs ~10 ms even without blocking."""
        events = self._client.event
        while any(e["tag"].startswith(tag) for e in events.pending_events):
            event = events.get_event(no_block=True, tag=tag, match_type="startswith", full=True)
            load = event["data"]  # the minion's request: its id, our data under "data"
            live.add(load.get("id"), load.get("data"))

    def _sync(self, hosts: list[str], deadline: float) -> None:
        """Have ``hosts`` fetch our execution module from the master's _modules."""
        try:
            self._client.cmd(
                hosts,
                "saltutil.sync_modules",
                tgt_type="list",
                timeout=max(1.0, deadline - time.monotonic()),
                gather_job_timeout=float(self.config["salt.gather_job_timeout"]),
            )
        except SaltClientError:
            pass  # the second run then reports what is wrong with these hosts

    def _missing_source(self, step: Step) -> str:
        if isinstance(step, Copy) and not (self._file_roots / step.src).is_file():
            return f"{step.src} is not in the master's file_roots ({self._file_roots})"
        return ""


class _Job:
    """One step's run: what every publish of it (a first one, a second after a sync) shares."""

    def __init__(
        self,
        step: Step,
        started: float,
        timeout: float,
        limit: int,
        emit: Emit,
        output: Output | None,
    ) -> None:
        self.step = step
        self.started = started
        self.timeout = timeout
        self.deadline = started + timeout
        self.limit = limit
        self.emit = emit
        self.output = output
        self.streams = isinstance(step, Command) and output is not None

    def result(self, host: str, data: dict[str, Any]) -> HostResult:
        duration = time.monotonic() - self.started
        return _result(self.step, host, data, duration, self.limit, self.timeout)


class _LiveOutput:
    """One publish's output events, handed to ``output`` in the order each minion
    fired them (``seq``). A host's result settles it: the record begins with all
    that went out, the head text no event brought yet goes out then (unless no
    event came at all: a command over before its first chunk is its record),
    and later events of the host are ignored (the return may overtake them)."""

    def __init__(self, output: Output | None, hosts: list[str]) -> None:
        self._output = output
        self._shown: dict[str, dict[str, list[str]]] = {
            host: {stream: [] for stream in STREAMS} for host in hosts
        }
        self._next = dict.fromkeys(hosts, 0)  # each host's seq to show next
        self._early: dict[str, dict[int, dict[str, Any]]] = {host: {} for host in hosts}

    def add(self, host: Any, chunk: Any) -> None:
        if host not in self._shown or not isinstance(chunk, dict):
            return  # not one of ours, or settled already
        seq = chunk.get("seq")
        if not isinstance(seq, int) or seq < self._next[host]:
            return
        early = self._early[host]
        early[seq] = chunk
        while self._next[host] in early:
            piece = early.pop(self._next[host])
            self._next[host] += 1
            for stream in STREAMS:
                text = piece.get(stream)
                if isinstance(text, str) and text:
                    self._show(host, stream, text)

    def settle(self, result: HostResult, data: dict[str, Any] | None) -> HostResult:
        """``result``, made to begin with what went out live; nothing more goes out after."""
        host = result.host
        shown = {stream: "".join(parts) for stream, parts in self._shown[host].items()}
        ret = data.get("ret") if data else None
        heads = ret.get("head") if isinstance(ret, dict) else None
        if not (self._next[host] or self._early[host]):  # no event came
            heads = None
        for stream in STREAMS:
            record, sent = getattr(result, stream), shown[stream]
            if not record.startswith(sent):  # no return, or Salt dropped it: keep what was seen
                setattr(result, stream, sent + "\n" + record if record else sent)
                continue
            head = heads.get(stream) if isinstance(heads, dict) else None
            if isinstance(head, int) and head > len(sent):
                self._show(host, stream, record[len(sent) : head])
        del self._shown[host], self._next[host], self._early[host]
        return result

    def _show(self, host: str, stream: str, text: str) -> None:
        self._shown[host][stream].append(text)
        if self._output is not None:  # None: no events were asked for, nothing comes here
            self._output(host, stream, text)


def install_module(file_roots: Path) -> str:
    """Put our execution module in ``<file_roots>/_modules`` unless it is there already,
    for minions to fetch with ``saltutil.sync_modules``; its SHA-256 digest."""
    source = Path(capture.__file__).read_bytes()
    target = file_roots / "_modules" / f"{MODULE}.py"
    try:
        current = target.read_bytes()
    except FileNotFoundError:
        current = None
    if current != source:
        target.parent.mkdir(parents=True, exist_ok=True)
        # written aside and renamed: another job process may be reading it
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{MODULE}.")
        with os.fdopen(fd, "wb") as handle:
            handle.write(source)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    return hashlib.sha256(source).hexdigest()


def _needs_sync(data: dict[str, Any]) -> bool:
    """Whether a minion's return says it lacks our module, or holds an older copy."""
    ret = data.get("ret")
    if isinstance(ret, dict):
        return ret.get("stale") is True
    return isinstance(ret, str) and ret.startswith(NOT_AVAILABLE)


def _call(step: Step, timeout: float, stream: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The Salt function and keyword arguments for a step; a Command step with
    ``stream`` (``limit``, ``tag``, ``digest``) is our module, else ``cmd.run_all``.

    Everything goes in ``kwarg``: Salt parses positional strings that look
    like ``key=value`` into keyword arguments, which would let a parameter
    value switch on ``python_shell``.
    """
    if isinstance(step, Command) and stream is not None:
        return FUNCTION, {
            "cmd": list(step.argv),  # a list: no shell, no splitting; never logged
            "env": dict(step.env),
            # ended a little before our deadline, so that its return (with
            # the output up to then) still reaches us
            "timeout": max(1.0, timeout - RETURN_MARGIN),
            **stream,
        }
    if isinstance(step, Command):
        return "cmd.run_all", {
            "cmd": list(step.argv),  # a list with python_shell=False: no shell, no splitting
            "python_shell": False,
            "env": dict(step.env),
            "timeout": max(1, math.ceil(timeout)),
            "output_loglevel": "quiet",  # keep argv (parameters) out of the minion's log
            "ignore_retcode": True,
        }
    if isinstance(step, Copy):
        return "state.single", {
            "fun": "file.managed",
            "name": step.dest,
            "source": f"salt://{step.src}",
            "mode": step.mode,
        }
    assert isinstance(step, Service)
    return f"service.{step.action}", {"name": step.name}


def _result(
    step: Step, host: str, data: dict[str, Any], duration: float, limit: int, timeout: float
) -> HostResult:
    if data.get("failed"):  # expect_minions: never returned, never answered find_job
        return HostResult(
            host,
            "unreachable",
            duration=duration,
            stderr="the minion did not answer (stopped or disconnected)",
        )
    ret = data.get("ret")
    if _needs_sync(data):  # still, after saltutil.sync_modules
        why = f"{MODULE} is missing or out of date on the minion and syncing it did not help"
        return HostResult(host, "failed", 1, stderr=why, duration=duration)
    if isinstance(step, Command) and isinstance(ret, dict) and "retcode" in ret:
        out, err = ret.get("stdout") or "", ret.get("stderr") or ""
        dropped = TRIMMED in (out, err)
        if dropped:
            out, err = ("" if v == TRIMMED else v for v in (out, err))
            err += f"\n[{TRIMMED_NOTE}]"
        stdout, cut_out = cap_output(out, limit)
        stderr, cut_err = cap_output(err, limit)
        rc = ret["retcode"]
        if "timedout" in ret:  # our module says
            timedout = ret["timedout"] is True
        else:  # cmd.run_all leaves a note in stdout
            timedout = rc == 1 and bool(SALT_TIMED_OUT.search(stdout)) and duration >= timeout - 1
        status = "timeout" if timedout else "ok" if rc == 0 else "failed"
        cut = dropped or cut_out or cut_err or ret.get("truncated") is True
        return HostResult(host, status, rc, stdout, stderr, duration, cut)
    if isinstance(step, Copy) and isinstance(ret, dict):
        states = list(ret.values())
        ok = bool(states) and all(s.get("result") is True for s in states)
        text = "\n".join(str(s.get("comment", "")) for s in states)
        changed = any(s.get("changes") for s in states)
        if ok:
            return HostResult(
                host, "ok", 0, f"{text}\n{'changed' if changed else 'unchanged'}", duration=duration
            )
        return HostResult(host, "failed", 1, stderr=text, duration=duration)
    if isinstance(step, Service) and ret is True:
        return HostResult(host, "ok", 0, f"{step.name}: {step.action} done", duration=duration)
    # a string or list is Salt's error text (unknown function, bad argument, exception)
    text = "\n".join(map(str, ret)) if isinstance(ret, list) else str(ret)
    if isinstance(step, Service) and ret is False:
        text = f"{step.name}: {step.action} failed"
    stderr, cut = cap_output(text, limit)
    return HostResult(
        host, "failed", data.get("retcode", 1) or 1, stderr=stderr, duration=duration, truncated=cut
    )


ADAPTER = SaltBackend
