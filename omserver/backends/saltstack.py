"""The SaltStack backend: ``salt.client.LocalClient`` on the salt master.

One publish per step to the listed minions (``tgt_type='list'``), returns read
from the master's event bus as they arrive, the step deadline checked between
events. A late answer is not a missing one (see :class:`_Watch`): a minion is
``unreachable`` only when it has no accepted key, or when it left the step and
a ``saltutil.find_job`` unanswered for a while the master was seen answering
for others, and the master's job cache holds nothing from it either; one
without a result at the deadline is ``timeout``. :func:`cached_results` reads
a published step's results back from that cache (for a daemon that restarted
meanwhile; ``Backend.on_publish`` gives the jid).

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
from collections.abc import Collection, Iterable, Sequence
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
# gather_job_timeouts a minion may stay silent (no return, no find_job answer) while the
# master is seen answering for others, before it is called unreachable (see _Watch).
PATIENCE = 2
GONE = "the minion answered neither the step nor a find_job check (stopped or disconnected)"


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
        gather = float(self.config["salt.gather_job_timeout"])
        # The first find_job after this long; a silent minion is known PATIENCE * gather later.
        check_after = max(1.0, min(self._check_after, budget - PATIENCE * gather - 0.5))
        try:
            # listen: the event bus is connected before the publish, so no return is missed
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
        published = sorted(set(hosts).intersection(pub.get("minions", ())))
        for host in hosts:
            if host not in published:
                job.emit(HostResult(host, "unreachable", stderr=refused))
        if not published:
            return []
        try:
            if self.on_publish is not None:
                self.on_publish(pub["jid"], published)
            watch = _Watch(self._client, job, pub["jid"], published, tag, resync=resync)
            watch.follow(check_after, gather)
            return watch.unsynced
        finally:
            self._client._clean_up_subscriptions(pub["jid"])

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


class _Watch:
    """One publish, followed until each minion has a result or the step's deadline.

    Returns and live output come from the master's event bus, every event read
    as it comes (a client gets all of the master's events; read one per pass,
    as ``get_iter_returns`` does, a loaded bus falls seconds behind).

    Salt's own loop calls a minion gone when its find_job answer misses
    ``gather_job_timeout``, asking again every ``gather_job_timeout``. Under
    load the answers and the return come seconds later (the master's job cache
    then holds the return), and every question adds to a busy minion's queue.
    So here a minion is asked only when nothing was heard of it for
    ``gather_job_timeout``: any return or output of it, for any job (another
    job's find_job among them), counts as an answer, whenever it comes, so
    concurrent jobs do not each ask a busy minion the same question; and its silence
    counts only while the master is seen keeping up: from the first return of
    another minion after the question (each question also goes to a minion that
    returned already, when there is one), or from the question itself when no
    other job was published since this one. A minion silent for PATIENCE
    ``gather_job_timeout`` of that, and of whom the job cache holds neither the
    return nor the answer, is ``unreachable``. At the deadline the cache is read
    once more for returns the bus has not brought; the rest end ``timeout``.
    """

    def __init__(
        self,
        client: salt.client.LocalClient,
        job: _Job,
        jid: str,
        hosts: list[str],
        tag: str,
        *,
        resync: bool,
    ) -> None:
        self._client = client
        self._job = job
        self._jid = jid
        self._tag = tag
        self._resync = resync
        self._live = _LiveOutput(job.output, hosts)
        self._pending = set(hosts)
        self._asked: dict[str, tuple[str, float]] = {}  # unanswered: find_job jid, when sent
        self._silent_since: dict[str, float] = {}  # when the master was seen keeping up
        self._unproven: set[str] = set()  # asked, and no other minion heard from since
        self._checks: set[str] = set()  # the jids of our find_jobs
        self._opened = time.monotonic()
        self._other_job = -math.inf  # when someone else's job was last published
        self._up: set[str] = set()  # pending minions heard from since the publish
        self._heard: dict[str, float] = {}  # when each pending minion was last heard from
        self._witness = ""  # a minion that returned already: it shows the master answering
        self.unsynced: list[str] = []

    def follow(self, check_after: float, gather: float) -> None:
        """Emit every minion's result: from the bus, the job cache, or as
        ``unreachable``/``timeout``; ask minions without a return ``find_job``
        from ``check_after`` s on, every ``gather`` s."""
        events = self._client.event
        next_check = time.monotonic() + check_after
        while self._pending:
            now = time.monotonic()
            if now >= self._job.deadline:
                break
            if now >= next_check:
                self._check(now, gather)
                next_check = now + gather
            # no tag: a tag would leave the other events to pile up in pending_events
            event = events.get_event(no_block=True, full=True)  # waits 10 ms at most
            if event is not None:
                self._take(event["tag"], event["data"])
        if not self._pending:
            return
        for host, data in self._cached(self._jid, self._pending).items():
            self._settle(host, data)
        elapsed = time.monotonic() - self._job.started
        within = f"within the step's {self._job.timeout:.0f} s"
        for host in sorted(self._pending):
            why = f"the minion answered but sent no result {within}"
            if host not in self._up:
                why = f"no answer {within}"
            result = HostResult(host, "timeout", duration=elapsed, stderr=why)
            self._job.emit(self._live.settle(result, None))

    def _take(self, tag: str, data: Any) -> None:
        jid, kind = _job_event(tag)
        if kind == "new" and jid != self._jid and jid not in self._checks:
            self._other_job = time.monotonic()
            return
        host = data.get("id") if isinstance(data, dict) else None
        if not isinstance(host, str) or not (kind == "ret" or tag.startswith(OUTPUT_TAG)):
            return  # not a minion's doing
        others = self._unproven.difference({host})
        if others:  # another minion is heard: the master keeps up
            now = time.monotonic()
            for other in others:
                self._silent_since.setdefault(other, now)
            self._unproven.intersection_update({host})
        if host not in self._pending:
            return
        if jid == self._jid and "return" in data:
            self._settle(host, _returned(data))
            return
        # A return or output of any job (the answer to our find_job among them): it is up.
        self._forget_question(host)
        self._up.add(host)
        self._heard[host] = time.monotonic()
        if self._tag and tag.startswith(self._tag):  # the minion fired it: data under "data"
            self._live.add(host, data.get("data"))

    def _check(self, now: float, gather: float) -> None:
        """Call ``unreachable`` the minions silent for PATIENCE * ``gather`` s (unless
        the job cache holds their return or answer); ask the rest not heard from for
        ``gather`` s, except those with a question out, whether they still run the job."""
        overdue = sorted(h for h in self._asked if now - self._since(h) >= PATIENCE * gather)
        if overdue:
            for host, data in self._cached(self._jid, overdue).items():
                self._settle(host, data)
            for check in {self._asked[h][0] for h in overdue if h in self._asked}:
                for host in self._cached(check, overdue):
                    self._forget_question(host)
                    self._up.add(host)
            elapsed = now - self._job.started
            for host in overdue:
                if host in self._asked:
                    self._forget_question(host)
                    self._pending.discard(host)
                    result = HostResult(host, "unreachable", duration=elapsed, stderr=GONE)
                    self._job.emit(self._live.settle(result, None))
        quiet = now - gather
        ask = sorted(
            h for h in self._pending.difference(self._asked) if self._heard.get(h, quiet) <= quiet
        )
        if not ask:
            return
        try:
            pub = self._client.run_job(
                [*ask, self._witness] if self._witness else ask,
                "saltutil.find_job",
                arg=[self._jid],
                tgt_type="list",
                timeout=gather,
                listen=False,  # the bus is read already, for every tag
            )
        except SaltClientError:
            return  # nobody was asked: no silence to count
        if pub:
            self._checks.add(pub["jid"])
            self._asked.update(dict.fromkeys(ask, (pub["jid"], now)))
            self._unproven.update(ask)

    def _since(self, host: str) -> float:
        """Since when the silence of ``host`` counts (infinity: not yet)."""
        asked = self._asked[host][1]
        if host in self._silent_since:
            return self._silent_since[host]
        return asked if self._other_job < self._opened else math.inf

    def _forget_question(self, host: str) -> None:
        self._asked.pop(host, None)
        self._silent_since.pop(host, None)
        self._unproven.discard(host)

    def _cached(self, jid: str, hosts: Collection[str]) -> dict[str, dict[str, Any]]:
        try:
            return _cache_returns(self._client, jid, hosts)
        except SaltClientError:
            return {}  # the bus alone then decides

    def _settle(self, host: str, data: dict[str, Any]) -> None:
        self._pending.discard(host)
        self._forget_question(host)
        self._witness = host
        if self._tag and self._resync and _needs_sync(data):
            self.unsynced.append(host)
        else:
            self._job.emit(self._live.settle(self._job.result(host, data), data))


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


def cached_results(
    config: Config, step: Step, jid: str, hosts: Iterable[str], output_limit: int
) -> dict[str, HostResult]:
    """The results of ``step``, published as ``jid`` (see ``Backend.on_publish``), as the
    master's job cache holds them: for a daemon that restarted while the step ran.

    Each is the HostResult the live path gives for the same return, but with
    ``duration`` 0 (the cache keeps no end time). Hosts without a return there
    are absent, and so are those that only said they lack our module: their
    result is under the jid of the publish after the sync. Raises
    SaltClientError when the cache cannot be read.
    """
    client = salt.client.LocalClient(mopts=salt.config.client_config(config["salt.master_config"]))
    try:
        returns = _cache_returns(client, jid, set(hosts))
    finally:
        client.destroy()
    # No clock to check: a timeout of 0 leaves cmd.run_all's "Timed out" note alone to tell.
    return {
        host: _result(step, host, data, 0.0, output_limit, 0.0)
        for host, data in sorted(returns.items())
        if not _needs_sync(data)
    }


def _cache_returns(
    client: salt.client.LocalClient, jid: str, hosts: Collection[str]
) -> dict[str, dict[str, Any]]:
    """What the master's job cache holds for ``jid`` from ``hosts``, shaped as _result reads it.

    The returner's ``get_jid`` rather than ``LocalClient.get_cache_returns``,
    which drops the ``retcode``.
    """
    get_jid = client.returners[f"{client.opts['master_job_cache']}.get_jid"]
    try:
        stored = get_jid(jid)
    except Exception as exc:  # any returner's own errors; get_cache_returns does the same
        raise SaltClientError(f"could not read the master's job cache: {exc}") from exc
    return {host: _returned(load) for host, load in stored.items() if host in hosts}


def _returned(load: dict[str, Any]) -> dict[str, Any]:
    """A minion's return (an event's data or a job cache entry) as _result reads it."""
    data = {"ret": load.get("return")}
    if "retcode" in load:
        data["retcode"] = load["retcode"]
    return data


def _job_event(tag: str) -> tuple[str, str]:
    """The jid and kind of a job event (``salt/job/<jid>/new``, ``salt/job/<jid>/ret/<minion>``);
    empty strings for other events."""
    parts = tag.split("/", 4)
    if len(parts) >= 4 and parts[:2] == ["salt", "job"]:
        return parts[2], parts[3]
    return "", ""


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
