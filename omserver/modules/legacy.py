"""Runs book-style modules: ``class Modulehandle(moduleid, hosts, sys_param_row)``.

The 2014 OMServer called ``Modulehandle(id, "ip*hostname,...", ["50", ...]).run()``
and got back Salt's ``{minion: output}`` dict, an old Ansible runner dict
(``{"contacted": {...}, "dark": {...}}``) or a string (an error, or "No hosts
found"). :func:`adapt` wraps such a class as a ``run(ctx, params)`` so it runs
in the same child process, with the same timeout, and its answer becomes one
:class:`HostResult` per host.

Porting a book file: make it Python 3, replace ``from Public_lib import *``
with ``from omserver.modules.legacy import target_host`` and ``expr_form=`` with
``tgt_type=``. ``salt.client.LocalClient()`` talks to the configured master:
the job's child process sets ``SALT_MASTER_CONFIG`` from ``salt.master_config``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from omserver.sdk import Context, HostResult, Target


def target_host(hosts: str, kind: str) -> list[str]:
    """The book's helper: ``"ip*hostname,..."`` → the IPs (``"IP"``) or hostnames (``"SN"``)."""
    index = {"IP": 0, "SN": 1}[kind]
    return [pair.split("*")[index] for pair in hosts.split(",") if "*" in pair]


def adapt(handle: type, module_id: int, schema: list[dict[str, Any]]) -> Callable[..., None]:
    """A ``run(ctx, params)`` that drives the book-style ``handle`` class."""

    def run(ctx: Context, params: Mapping[str, Any]) -> None:
        hosts = ",".join(f"{t.lan_ip}*{t.hostname}" for t in ctx.targets)
        row = [_as_text(params.get(field["name"])) for field in schema]
        started = time.monotonic()
        answer = handle(module_id, hosts, row).run()
        duration = time.monotonic() - started
        for result in normalize(answer, ctx.targets, duration):
            ctx.report(result)

    return run


def normalize(answer: Any, targets: list[Target], duration: float) -> list[HostResult]:
    """One result per target from whatever a book-style ``run()`` returned."""
    if isinstance(answer, str):  # the book returned str(e) or "No hosts found"
        return [HostResult(t.hostname, "failed", stderr=answer, duration=duration) for t in targets]
    if not isinstance(answer, Mapping):
        message = f"the module returned {type(answer).__name__}, not a dict or a string"
        return [
            HostResult(t.hostname, "failed", stderr=message, duration=duration) for t in targets
        ]
    if "contacted" in answer or "dark" in answer:
        contacted, dark = answer.get("contacted") or {}, answer.get("dark") or {}
    else:
        contacted, dark = answer, {}
    results = []
    for target in targets:
        keys = (target.hostname, target.lan_ip)
        reply = next((contacted[k] for k in keys if k in contacted), None)
        down = next((dark[k] for k in keys if k in dark), None)
        if reply is not None:
            results.append(_from_reply(target.hostname, reply, duration))
        elif down is not None:
            message = down.get("msg", str(down)) if isinstance(down, Mapping) else str(down)
            results.append(
                HostResult(target.hostname, "unreachable", stderr=message, duration=duration)
            )
        else:
            results.append(
                HostResult(
                    target.hostname,
                    "unreachable",
                    duration=duration,
                    stderr="no return from this host",
                )
            )
    return results


def _from_reply(host: str, reply: Any, duration: float) -> HostResult:
    if isinstance(reply, Mapping) and ("rc" in reply or "retcode" in reply):
        rc = reply.get("rc", reply.get("retcode"))
        failed = bool(reply.get("failed")) or rc not in (0, None)
        return HostResult(
            host,
            "failed" if failed else "ok",
            rc,
            str(reply.get("stdout") or ""),
            str(reply.get("stderr") or reply.get("msg") or ""),
            duration,
        )
    if reply is False:
        return HostResult(host, "failed", 1, duration=duration)
    return HostResult(
        host, "ok", 0, reply if isinstance(reply, str) else repr(reply), duration=duration
    )


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
