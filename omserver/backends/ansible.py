"""The Ansible backend: Ansible's own Python API, in process, one ad-hoc play per step.

Why the in-process ``TaskQueueManager`` rather than ansible-runner: runner
starts the ``ansible`` executable for every call (about a second of Python
start-up and imports on each step) and reports through event files on disk,
while this runs where the job already is — a child process forked from a
server that imported Ansible once — and hands results straight to a callback
object as each host finishes. Isolation is the job's child process, which the
daemon kills at the timeout; Ansible's own workers run in their own sessions
and are stopped by its SIGTERM handler.

A Command step runs as our ``omserver_command`` action
(:mod:`omserver.backends.ansible_stream`), which streams the command's output
back while it runs; with no live output wanted (``output`` None) it is
Ansible's own ``command`` module, as Copy and Service steps are its modules.

Untrusted values stay literal: Ansible 2.19 renders templates only from
trusted sources (files it loads), never from strings built here, and a
command's ``argv`` reaches the host quoted word by word.
"""

from __future__ import annotations

import math
import os
import shlex
import signal
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ansible import context
from ansible.executor.task_queue_manager import TaskQueueManager
from ansible.inventory.manager import InventoryManager
from ansible.module_utils.common.collections import ImmutableDict
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play import Play
from ansible.plugins.callback import CallbackBase
from ansible.plugins.loader import action_loader, init_plugin_loader
from ansible.vars.manager import VariableManager

from omserver.backends import ansible_plugins
from omserver.backends.ansible_stream import ACTION, LiveChannel
from omserver.backends.base import Backend, Emit, Output
from omserver.config import Config
from omserver.sdk import HostResult, Target, cap_output
from omserver.sdk.steps import Command, Copy, Service, Step

SERVICE_STATES = {
    "start": "started",
    "stop": "stopped",
    "restart": "restarted",
    "reload": "reloaded",
}
_plugins_ready = False


class AnsibleBackend(Backend):
    """Must run in a process's main thread: Ansible installs signal handlers."""

    name = "ansible"

    def __init__(self, config: Config) -> None:
        global _plugins_ready
        super().__init__(config)
        if not _plugins_ready:
            init_plugin_loader([])
            action_loader.add_directory(str(Path(ansible_plugins.__file__).parent))
            _plugins_ready = True
        self._loader = DataLoader()
        self._files_dir = Path(config["ansible.files_dir"])

    def close(self) -> None:
        self._loader.cleanup_all_tmp_files()

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
        names = [t.hostname for t in targets]
        if isinstance(step, Copy) and not (self._files_dir / step.src).is_file():
            missing = f"{step.src} is not in ansible.files_dir ({self._files_dir})"
            for name in names:
                emit(HostResult(name, "failed", stderr=missing))
            return
        live = LiveChannel(output) if isinstance(step, Command) and output is not None else None
        collector = _Collector(emit, output_limit, started, live)
        task = self._task(step, timeout, started + timeout, output_limit, live)
        try:
            error = self._play(task, targets, timeout, collector)
        finally:
            if live is not None:
                live.close()
        for name in names:
            if name not in collector.done:
                error = error or "ansible reported no result for this host"
                emit(HostResult(name, "failed", duration=time.monotonic() - started, stderr=error))

    def _play(
        self,
        task: dict[str, Any],
        targets: Sequence[Target],
        timeout: float,
        collector: _Collector,
    ) -> str:
        """Run a one-task play on ``targets``; an error that stopped Ansible, or ""."""
        inventory = InventoryManager(loader=self._loader, sources=[], parse=False)
        for target in targets:
            inventory.add_host(target.hostname, group="all")
            host = inventory.get_host(target.hostname)
            for key, value in self._host_vars(target, timeout).items():
                host.set_variable(key, value)
        variables = VariableManager(loader=self._loader, inventory=inventory)
        play = Play().load(
            {
                "name": "omserver",
                "hosts": [t.hostname for t in targets],
                "gather_facts": False,
                "tasks": [task],
            },
            variable_manager=variables,
            loader=self._loader,
        )
        forks = max(1, min(int(self.config["ansible.forks"]), len(targets)))
        context.CLIARGS = ImmutableDict(
            connection=self.config["ansible.connection"],
            forks=forks,
            become=None,
            become_method=None,
            become_user=None,
            check=False,
            diff=False,
            verbosity=0,
            module_path=None,
            syntax=None,
            start_at_task=None,
        )
        with _process_state_kept():
            tqm = TaskQueueManager(
                inventory=inventory,
                variable_manager=variables,
                loader=self._loader,
                passwords={},
                forks=forks,
            )
            # Ansible has no public way to hand it a callback *object*: with this list
            # filled, run() skips loading the stdout callback and reports only to ours.
            tqm._callback_plugins.append(collector)
            try:
                tqm.run(play)
            except Exception as exc:  # an Ansible error before or between hosts
                return f"ansible: {exc}"
            finally:
                tqm.cleanup()
                tqm._connection_lockfile.close()  # Ansible leaves it to the process's exit
        return ""

    def _host_vars(self, target: Target, timeout: float) -> dict[str, Any]:
        config = self.config
        variables: dict[str, Any] = {
            "ansible_connection": config["ansible.connection"],
            "ansible_host": target.lan_ip,
            "ansible_port": target.ssh_port,
            "ansible_user": target.ssh_user,
            "ansible_python_interpreter": config["ansible.python_interpreter"],
            "ansible_ssh_pipelining": True,
            "ansible_ssh_timeout": max(
                1, min(config["ansible.connect_timeout"], math.ceil(timeout))
            ),
            # module arguments (parameters) stay out of the host's syslog
            "ansible_no_target_syslog": True,
        }
        if config["ansible.private_key_file"]:
            variables["ansible_ssh_private_key_file"] = config["ansible.private_key_file"]
        if config["ansible.known_hosts_file"]:
            known_hosts = shlex.quote(config["ansible.known_hosts_file"])
            variables["ansible_ssh_common_args"] = f"-o UserKnownHostsFile={known_hosts}"
        return variables

    def _task(
        self,
        step: Step,
        timeout: float,
        deadline: float,
        limit: int,
        live: LiveChannel | None,
    ) -> dict[str, Any]:
        task: dict[str, Any] = {"name": type(step).__name__.lower()}
        if live is not None:
            assert isinstance(step, Command)
            # no task timeout: the action keeps the deadline itself, and keeps the output
            task.update(
                action=ACTION,
                args={
                    "argv": list(step.argv),
                    "env": dict(step.env),
                    "deadline": deadline,  # monotonic: one clock for the workers we fork
                    "limit": limit,
                    "channel": live.fd,
                },
            )
            return task
        task["timeout"] = max(1, math.ceil(timeout))
        if isinstance(step, Command):
            task.update(
                action="command",
                environment=dict(step.env),
                args={"argv": list(step.argv), "expand_argument_vars": False},
            )
        elif isinstance(step, Copy):
            task.update(
                action="copy",
                args={"src": str(self._files_dir / step.src), "dest": step.dest, "mode": step.mode},
            )
        else:
            assert isinstance(step, Service)
            task.update(
                action="service", args={"name": step.name, "state": SERVICE_STATES[step.action]}
            )
        return task


@contextmanager
def _process_state_kept() -> Iterator[None]:
    """Undo what a TaskQueueManager changes process-wide (signal handlers, stdio
    inheritance), so the backend can also run inside a longer-lived process."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    inheritable = {}
    for fd in (0, 1, 2):
        with suppress(OSError):  # a closed descriptor has nothing to restore
            inheritable[fd] = os.get_inheritable(fd)
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for fd, flag in inheritable.items():
            os.set_inheritable(fd, flag)


class _Collector(CallbackBase):
    """Turns Ansible's per-host callbacks into HostResults, capped as they arrive;
    a host's live output is all delivered before its result."""

    def __init__(self, emit: Emit, limit: int, started: float, live: LiveChannel | None) -> None:
        super().__init__()
        self._init_callback_methods()
        self._emit = emit
        self._limit = limit
        self._started = started
        self._live = live
        self.done: set[str] = set()

    def _report(self, result: Any, status: str) -> None:
        data = result.result
        name = result.host.name
        if self._live is not None:
            self._live.settle(name)
        stdout, cut_out = cap_output(str(data.get("stdout") or ""), self._limit)
        stderr = data.get("stderr") or ""
        rc = data.get("rc")
        if status != "ok" and not stderr and (rc is None or self._live is None):
            stderr = data.get("msg") or ""  # not for a command that ran: its stderr is its own
        elif status == "ok" and not stdout and "rc" not in data:
            stdout = "changed" if data.get("changed") else "unchanged"
        stderr, cut_err = cap_output(str(stderr), self._limit)
        if data.get("timedout"):
            status = "timeout"
        if rc is None and status in ("ok", "failed"):
            rc = 0 if status == "ok" else 1
        self.done.add(name)
        self._emit(
            HostResult(
                name,
                status,
                rc,
                stdout,
                stderr,
                time.monotonic() - self._started,
                cut_out or cut_err or bool(data.get("truncated")),
            )
        )

    def v2_runner_on_ok(self, result: Any) -> None:
        self._report(result, "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._report(result, "failed")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._report(result, "unreachable")

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._report(result, "failed")


ADAPTER = AnsibleBackend
