"""The SaltStack backend: ``salt.client.LocalClient`` on the salt master.

One publish per step to the listed minions (``tgt_type='list'``), returns read
as they arrive (``get_iter_returns`` without blocking, so the step deadline is
checked between events). A minion that never answers is reported
``unreachable``; one still busy at the deadline, ``timeout``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import salt.client
import salt.config
import salt.utils.master
from salt.exceptions import SaltClientError

from omserver.backends.base import Backend, Emit
from omserver.config import Config
from omserver.sdk import HostResult, Target, cap_output
from omserver.sdk.steps import Command, Copy, Service, Step

# Salt swaps a value that would make an event bigger than max_event_size (default
# 1 MiB) for this string: set it above modules.output_limit on master and minions.
TRIMMED = "VALUE_TRIMMED"
# What cmd.run_all leaves in stdout when the minion killed the command at its timeout.
SALT_TIMED_OUT = re.compile(r" : Timed out after \d+ seconds\Z")
TRIMMED_NOTE = "Salt dropped this output: it is larger than max_event_size allows"


class SaltBackend(Backend):
    name = "saltstack"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        opts = salt.config.client_config(config["salt.master_config"])
        opts["gather_job_timeout"] = config["salt.gather_job_timeout"]
        self._client = salt.client.LocalClient(mopts=opts)
        self._file_roots = Path(config["salt.file_roots"])
        self._check_after = float(config["salt.timeout"])

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
    ) -> None:
        started = time.monotonic()
        # The master writes a new key when it restarts: a client made before (a
        # spare job process, a bench) reads it again rather than fail to publish.
        self._client.key = salt.utils.master.get_master_key(
            self._client.salt_user, self._client.opts
        )
        pending = {t.hostname for t in targets}
        missing = self._missing_source(step)
        if missing:
            for host in sorted(pending):
                emit(HostResult(host, "failed", stderr=missing))
            return
        fun, kwarg = _call(step, timeout)
        # Salt asks silent minions whether they still run the job after this
        # long; a down minion is known after it plus gather_job_timeout.
        gather = float(self.config["salt.gather_job_timeout"])
        check_after = max(1.0, min(self._check_after, timeout - gather - 0.5))
        try:
            pub = self._client.run_job(
                sorted(pending),
                fun,
                arg=(),
                tgt_type="list",
                timeout=check_after,
                kwarg=kwarg,
                listen=True,
            )
        except SaltClientError as exc:
            pub, refused = {}, f"the salt master did not take the job: {exc}"
        else:
            refused = "no minion with this id has an accepted key on the salt master"
        if not pub:
            for host in sorted(pending):
                emit(HostResult(host, "unreachable", stderr=refused))
            return
        deadline = started + timeout
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
                if ret is None:  # nothing arrived in the last 10 ms
                    if time.monotonic() >= deadline:
                        break
                    continue
                for host, data in ret.items():
                    if host in pending:
                        pending.discard(host)
                        emit(
                            _result(
                                step, host, data, time.monotonic() - started, output_limit, timeout
                            )
                        )
                if not pending:
                    break
        finally:  # what cmd_iter() does after its loop
            self._client._clean_up_subscriptions(pub["jid"])
        elapsed = time.monotonic() - started
        late = elapsed >= timeout
        for host in sorted(pending):
            why = (
                f"no answer within the step's {timeout:.0f} s"
                if late
                else "the minion is not connected or has no accepted key"
            )
            emit(
                HostResult(host, "timeout" if late else "unreachable", duration=elapsed, stderr=why)
            )

    def _missing_source(self, step: Step) -> str:
        if isinstance(step, Copy) and not (self._file_roots / step.src).is_file():
            return f"{step.src} is not in the master's file_roots ({self._file_roots})"
        return ""


def _call(step: Step, timeout: float) -> tuple[str, dict[str, Any]]:
    """The Salt function and keyword arguments for a step.

    Everything goes in ``kwarg``: Salt parses positional strings that look
    like ``key=value`` into keyword arguments, which would let a parameter
    value switch on ``python_shell``.
    """
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
    if isinstance(step, Command) and isinstance(ret, dict) and "retcode" in ret:
        out, err = ret.get("stdout") or "", ret.get("stderr") or ""
        dropped = TRIMMED in (out, err)
        if dropped:
            out, err = ("" if v == TRIMMED else v for v in (out, err))
            err += f"\n[{TRIMMED_NOTE}]"
        stdout, cut_out = cap_output(out, limit)
        stderr, cut_err = cap_output(err, limit)
        rc = ret["retcode"]
        status = "ok" if rc == 0 else "failed"
        if rc == 1 and SALT_TIMED_OUT.search(stdout) and duration >= timeout - 1:
            status = "timeout"
        return HostResult(host, status, rc, stdout, stderr, duration, dropped or cut_out or cut_err)
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
