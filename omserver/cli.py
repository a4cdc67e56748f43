"""The ``omserver`` command: run the daemon, manage client keys, and act as a client.

Exit status: 0 success; 1 the daemon is unreachable, refused, or a job did not
succeed; 2 bad usage or configuration; 3 (``ping``) the daemon answers but says it
is degraded (its database away, workers dead); 141 the reader of its output went away
(``omserver job 86 | head``), as for any tool a closed pipe stops. ``run`` keeps following its job
while the daemon restarts or its database is briefly away, saying so once on
stderr. Client commands speak as
``--client-id`` (default ``daemon.client_id``) with the key from ``--key-file``
or ``OMSERVER_DAEMON_CLIENT_KEY`` — never from the command line, where other
users could read it. With neither, the key ``make run`` left in the data folder
for client ``cli`` is used.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from omserver.client import (
    Client,
    DaemonError,
    DaemonInternalError,
    DaemonUnreachable,
    Unavailable,
    new_request_id,
    patiently,
)
from omserver.config import Config, ConfigError, env_name
from omserver.protocol.keys import KeyStore, KeyStoreError, key_file
from omserver.protocol.scope import WEB, Scope, ScopeError, parse_hosts, parse_modules

OK, FAILED, USAGE, DEGRADED = 0, 1, 2, 3
# A closed pipe: what the shell reports for a tool SIGPIPE ended (128 + 13), so that
# `set -o pipefail` scripts see `omserver … | head` as they see `cat … | head`.
READER_GONE = 141
# Seconds `omserver run` waits out a daemon restart or a database outage before it gives up.
OUTAGE_PATIENCE = 300.0
WEB_SETTINGS = "omserverweb.settings"  # the Django project the daemon records through
# `make run` issues the CLI in its folder a key of its own, kept in the data folder.
LAB_CLI_CLIENT = "cli"
LAB_CLI_KEY_FILE = "cli-client.key"


class UsageError(Exception):
    pass


# -- daemon and keys ---------------------------------------------------------------------


def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    """The daemon records jobs in the web's database, so the web's Django project
    starts it (its ``rundaemon`` command hands the engine the web's recorder)."""
    import django
    from django.core.management import call_command

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", WEB_SETTINGS)
    django.setup()
    call_command("rundaemon")
    return OK


def cmd_keys_add(config: Config, args: argparse.Namespace) -> int:
    store = KeyStore(key_file(config))
    scope = _scope(args, Scope())
    key = store.add(args.name, scope)
    print(f"{env_name('daemon.client_id')}={args.name}")
    print(f"{env_name('daemon.client_key')}={key}")
    print(f"(shown once; the daemon reads it from {store.path})", file=sys.stderr)
    print(f"scope: {scope.describe()}", file=sys.stderr)
    return OK


def cmd_keys_scope(config: Config, args: argparse.Namespace) -> int:
    store = KeyStore(key_file(config))
    current = next((r.scope for r in store.clients() if r.name == args.name), None)
    if current is None:
        raise KeyStoreError(f"no client named {args.name!r}")
    scope = _scope(args, current if current.assigned else Scope())
    store.set_scope(args.name, scope)
    print(f"{args.name}: {scope.describe()}")
    return OK


def _scope(args: argparse.Namespace, base: Scope) -> Scope:
    """``base`` with what the options change; ``--web`` is the web console's whole scope."""
    changes = {
        name: value
        for name, value in (
            ("modules", args.modules),
            ("hosts", args.hosts),
            ("on_behalf", args.on_behalf),
            ("all_jobs", args.all_jobs),
        )
        if value is not None
    }
    if args.web:
        if changes:
            raise UsageError("--web is the web console's whole scope: give no other option")
        return WEB
    try:
        if "modules" in changes:
            changes["modules"] = parse_modules(changes["modules"])
        if "hosts" in changes:
            changes["hosts"] = parse_hosts(changes["hosts"])
    except ScopeError as exc:
        raise UsageError(str(exc)) from exc
    return replace(base, **changes)


def cmd_keys_list(config: Config, args: argparse.Namespace) -> int:
    records = KeyStore(key_file(config)).clients()
    if args.json:
        shown = [
            {**asdict(r), "scope": r.scope.to_json() if r.scope.assigned else None} for r in records
        ]
        print(json.dumps(shown))
        return OK
    for r in records:
        state = f"revoked {r.revoked}" if r.revoked else "active"
        print(f"{r.name:<24} created {r.created}  {state}  {r.scope.describe()}")
    return OK


def cmd_keys_revoke(config: Config, args: argparse.Namespace) -> int:
    KeyStore(key_file(config)).revoke(args.name)
    print(f"revoked {args.name}; the daemon refuses its frames from now on")
    return OK


# -- client commands -----------------------------------------------------------------------


def _client(config: Config, args: argparse.Namespace) -> Client:
    """A client with the key from ``--key-file``, else the configured one, else the
    key ``make run`` issued for this folder's CLI (client ``cli``)."""
    client_id = args.client_id or config["daemon.client_id"]
    lab_key = config.data_dir / LAB_CLI_KEY_FILE
    if args.key_file:
        key = Path(args.key_file).read_text().strip()
    elif config["daemon.client_key"]:
        key = config["daemon.client_key"]
    elif lab_key.is_file():
        key = lab_key.read_text().strip()
        client_id = args.client_id or LAB_CLI_CLIENT
    else:
        raise UsageError(
            f"no client key: set {env_name('daemon.client_key')} or pass --key-file "
            "(create one with `omserver keys add NAME` on the daemon's host)"
        )
    return Client(args.address or config["daemon.address"], client_id, key)


def cmd_ping(config: Config, args: argparse.Namespace) -> int:
    with _client(config, args) as client:
        answer = client.ping()
    health = answer.get("health") if isinstance(answer.get("health"), dict) else {}
    degraded = health.get("status", "ok") != "ok"  # a daemon too old to say is taken as ok
    if args.json:
        print(json.dumps(answer))
    else:
        print(
            f"{'degraded' if degraded else 'ok'}: omserver {answer['version']} at "
            f"{client.address}, backend {answer['backend']}, "
            f"{counted(answer['modules'], 'module')} loaded"
        )
        for problem in health.get("problems") or (["it says it is degraded"] if degraded else []):
            print(f"  problem: {problem}")
    return DEGRADED if degraded else OK


def cmd_modules(config: Config, args: argparse.Namespace) -> int:
    with _client(config, args) as client:
        answer = client.modules()
    if args.json:
        print(json.dumps(answer))
        return OK
    for module in answer["modules"]:
        backends = ", ".join(module.get("backends", []))
        print(f"{module['id']:<6} {module.get('name', '')}  [{backends}]")
    for path, message in sorted(answer["errors"].items()):
        print(f"not loaded: {path}: {message}")
    return OK


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    rollout = {
        key: value
        for key, value in (
            ("canary", args.canary),
            ("batch_size", args.batch_size),
            ("max_failure_ratio", args.max_failure_ratio),
        )
        if value is not None
    }
    request = new_request_id()  # the same for every try: the job is made once
    with _client(config, args) as client:
        outage = _Outage(client.address)
        job_id = patiently(
            lambda: client.submit(
                args.module_id,
                hosts,
                dict(args.param),
                timeout=args.timeout,
                rollout=rollout or None,
                request=request,
            ),
            OUTAGE_PATIENCE,
            outage.report,
        )
        if not args.json:
            on = counted(len(hosts), "host")
            print(f"job {job_id}: module {args.module_id} on {on}", flush=True)
        return _follow(client, job_id, args.json, outage)


def cmd_job(config: Config, args: argparse.Namespace) -> int:
    with _client(config, args) as client:
        state = client.job(args.job_id)
        while state["more"]:  # one answer holds a page: gather the job whole
            page = client.job(args.job_id, state["cursor"])
            for key in ("results", "steps", "output"):
                page[key] = state[key] + page[key]
            state = page
    _print_state(state, args.json)
    return OK if state["status"] == "succeeded" else FAILED


def cmd_cancel(config: Config, args: argparse.Namespace) -> int:
    with _client(config, args) as client:
        state = client.cancel(args.job_id)
    print(f"job {state['id']}: {state['status']}")
    return OK


class _Outage:
    """Says on stderr, once per outage, that the daemon is away and that we wait for it."""

    def __init__(self, address: str) -> None:
        self.address = address

    def report(self, error: DaemonError | None) -> None:
        if error is None:
            print(f"omserver: the daemon at {self.address} answers again", file=sys.stderr)
            return
        print(
            f"omserver: {describe(error, self.address)}; still trying "
            f"(for up to {OUTAGE_PATIENCE:g} s)",
            file=sys.stderr,
            flush=True,
        )


def _follow(client: Client, job_id: int, as_json: bool, outage: _Outage) -> int:
    """Print steps' lines as they are printed, each step and host as it ends; the job's
    success is the exit status. The job goes on without us: an outage is waited out."""
    shown = _Shown()
    for state in client.follow(job_id, patience=OUTAGE_PATIENCE, on_outage=outage.report):
        if as_json:
            for key in ("output", "steps", "results"):
                for row in state[key]:
                    print(json.dumps({key: row}), flush=True)
            continue
        for text in shown.changes(state):
            print(text, flush=True)
    summary = {k: v for k, v in state.items() if k not in ("output", "steps", "results")}
    print(json.dumps({"job": summary}) if as_json else _summary(state))
    return OK if state["status"] == "succeeded" else FAILED


class _Shown:
    """What of each step went to the terminal, so a step's final text adds only the rest
    (it begins with the live output shown)."""

    def __init__(self) -> None:
        self.printed: dict[tuple[str, int, str], str] = {}

    def changes(self, state: dict[str, Any]) -> list[str]:
        lines = []
        for chunk in state["output"]:
            key = (chunk["host"], chunk["step"], chunk["stream"])
            self.printed[key] = self.printed.get(key, "") + chunk["text"]
            lines += _lines(key, chunk["text"])
        for step in state["steps"]:
            if step["status"] == "running":
                lines.append(f"{step['host']} step {step['number']}: {step['action']}")
                continue
            for stream in ("stdout", "stderr"):
                key = (step["host"], step["number"], stream)
                lines += _lines(key, step[stream][len(self.printed.pop(key, "")) :])
            lines.append(_step_line(step))
        for host in state["results"]:
            if host["status"] != "running":
                lines.append(_host_line(host))
        return lines


def _lines(key: tuple[str, int, str], text: str) -> list[str]:
    host, step, stream = key
    mark = "|" if stream == "stdout" else "!"
    return [f"{host}#{step} {mark} {line}" for line in text.splitlines()]


def _step_line(step: dict[str, Any]) -> str:
    cut = "  (output truncated)" if step.get("truncated") else ""
    return (
        f"{step['host']} step {step['number']} [{step['status']}] rc={step.get('rc')} "
        f"{step.get('duration') or 0:.2f}s  {step['action']}{cut}"
    )


def _host_line(host: dict[str, Any]) -> str:
    why = f"  {host['error']}" if host.get("error") else ""
    return f"== {host['host']} [{host['status']}] rc={host.get('rc')} {host['duration']:.2f}s{why}"


def _print_state(state: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(state))
        return
    steps: dict[str, list[dict[str, Any]]] = {}
    for step in state["steps"]:
        steps.setdefault(step["host"], []).append(step)
    for host in state["results"]:
        print(_host_line(host))
        for step in sorted(steps.get(host["host"], []), key=lambda s: s["number"]):
            print("  " + _step_line(step))
            for stream in ("stdout", "stderr"):
                for line in _lines((host["host"], step["number"], stream), step[stream]):
                    print("  " + line)
    print(_summary(state))


def counted(n: int, noun: str) -> str:
    """``1 host``, ``2 hosts``: the CLI speaks English, whose plural is the noun plus s."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _summary(state: dict[str, Any]) -> str:
    text = f"job {state['id']} {state['status']}"
    for key in ("error", "rollout_stop"):
        if state.get(key):
            text += f"; {state[key]}"
    return text


# -- wiring --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omserver", description="OMServer master-control daemon")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("serve", help="run the daemon").set_defaults(func=cmd_serve)

    keys = sub.add_parser("keys", help="manage client keys").add_subparsers(
        dest="keys_command", required=True
    )
    scope = argparse.ArgumentParser(add_help=False)
    scope.add_argument("--modules", help="module ids it may run, comma-separated, or '*'")
    scope.add_argument(
        "--hosts",
        help="inventory hosts it may target, comma-separated: '*', name:PATTERN (or PATTERN), "
        "app:PATTERN, zone:PATTERN; 'unlisted' for targets outside the inventory",
    )
    scope.add_argument(
        "--on-behalf",
        action=argparse.BooleanOptionalAction,
        help="it may name another user as requested_by",
    )
    scope.add_argument(
        "--all-jobs",
        action=argparse.BooleanOptionalAction,
        help="it may read, wait on and cancel other clients' jobs",
    )
    scope.add_argument(
        "--web",
        action="store_true",
        help="the web console's scope: every module and inventory host, on behalf, all jobs",
    )
    add = keys.add_parser(
        "add",
        parents=[scope],
        help="create a client and print its key (it may do nothing its options do not give)",
    )
    add.add_argument("name")
    add.set_defaults(func=cmd_keys_add)
    rescope = keys.add_parser(
        "scope", parents=[scope], help="change what a client's key may do (the rest stays)"
    )
    rescope.add_argument("name")
    rescope.set_defaults(func=cmd_keys_scope)
    listing = keys.add_parser("list", help="clients, created, revoked, scope (never the keys)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a client's key")
    revoke.add_argument("name")
    revoke.set_defaults(func=cmd_keys_revoke)

    client = argparse.ArgumentParser(add_help=False)
    client.add_argument("--address", help="daemon host:port (default daemon.address)")
    client.add_argument("--client-id", help="speak as this client (default daemon.client_id)")
    client.add_argument("--key-file", help="file holding the client key")
    client.add_argument("--json", action="store_true", help="machine-readable output")

    def command(name: str, func: Callable[..., int], help: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, parents=[client], help=help)
        command.set_defaults(func=func)
        return command

    command("ping", cmd_ping, "check the daemon answers (exit 0) or not (exit 1)")
    command("modules", cmd_modules, "loaded modules and load errors")
    run = command("run", cmd_run, "run a module and print each host's result")
    run.add_argument("module_id", type=int)
    run.add_argument("--hosts", required=True, help="comma-separated host names")
    run.add_argument("--param", type=_param, action="append", default=[], metavar="NAME=VALUE")
    run.add_argument("--timeout", type=float, help="job timeout, seconds")
    run.add_argument("--canary", type=int, help="run this many hosts first")
    run.add_argument("--batch-size", type=int, help="then this many at a time")
    run.add_argument(
        "--max-failure-ratio",
        type=float,
        help="stop when more than this share of hosts failed (0-1)",
    )
    command("job", cmd_job, "a job's status and results").add_argument("job_id", type=int)
    command("cancel", cmd_cancel, "stop a job").add_argument("job_id", type=int)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.func(Config(), args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return status
    except BrokenPipeError:
        return _reader_gone()
    except (ConfigError, UsageError, KeyStoreError, OSError) as exc:
        print(f"omserver: {exc}", file=sys.stderr)
        return USAGE
    except DaemonError as exc:
        print(f"omserver: {describe(exc, args.address)}", file=sys.stderr)
        return FAILED


def _reader_gone() -> int:
    """Stop quietly when our stdout's reader has gone: a job being followed goes on on
    the daemon. What is still buffered goes to /dev/null, so that Python's last flush
    at exit does not fail and print a traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return READER_GONE


def describe(exc: DaemonError, address: str | None = None) -> str:
    """One line an operator can act on: what failed, and what to do about it."""
    where = f"the daemon at {address}" if address else "the daemon"
    hint = ""
    if isinstance(exc, DaemonUnreachable):
        hint = f" (is {where} running?)"
    elif isinstance(exc, Unavailable):
        hint = f" ({where} is up but cannot serve this now; try again shortly)"
    elif isinstance(exc, DaemonInternalError):
        hint = f" ({where} failed on this request)"
    return f"{type(exc).__name__}: {exc}{hint}"
