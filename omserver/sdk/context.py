"""``ctx``: the one object a module's ``run(ctx, params)`` drives hosts with.

Every step (``cmd``, ``shell``, ``copy``, ``service``) runs on the hosts still
in play (or the ``hosts=`` among them, when hosts need different steps) and
returns ``{host: HostResult}``. The job record keeps every step: its start is
announced, the lines it prints stream out while it runs, and each host's
result is sent the moment that host finishes. A host whose step did not end
``ok`` is left out of later steps, so a module never restarts a service whose
config failed to copy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any

from omserver.sdk.errors import ModuleError
from omserver.sdk.results import HostResult, Target, cap_output
from omserver.sdk.schema import MASK
from omserver.sdk.steps import SHELL, Command, Copy, Service, Step

if TYPE_CHECKING:
    from omserver.backends.base import Backend

Results = dict[str, HostResult]
ACTION_CHARS = 500  # of a step's description kept in the record
Announce = Callable[[int, str, list[str]], None]  # (step, action, hosts) as a step starts
Output = Callable[[str, int, str, str], None]  # (host, step, stream, text) as it is printed


class Context:
    """Steps on the job's hosts through the configured backend.

    ``targets`` lists the hosts still in play, ``results`` each host's latest
    step result, ``settings`` the module's ``SETTINGS`` with the operator's
    ``[module.<id>]`` values applied, ``backend`` names the backend and
    ``log`` is the module's logger (its records reach the daemon's log).
    """

    def __init__(
        self,
        backend: Backend,
        targets: Sequence[Target],
        *,
        params: Mapping[str, Any],
        settings: Mapping[str, Any],
        deadline: float,
        output_limit: int,
        emit: Callable[[HostResult], None],
        announce: Announce = lambda step, action, hosts: None,
        output: Output | None = None,
        secrets: Sequence[str] = (),
        log: logging.Logger | None = None,
    ) -> None:
        self.backend = backend.name
        self.targets = list(targets)
        self.settings = dict(settings)
        self.log = log or logging.getLogger("omserver.module")
        self.results: Results = {}
        self._backend = backend
        self._params = params
        self._deadline = deadline
        self._limit = output_limit
        self._emit = emit
        self._announce = announce
        self._output = output
        self._secrets = secrets
        self._steps = 0  # steps started so far: the next one's number is one more
        self._report_step = 0  # the step number results from report() are filed under

    # -- steps ----------------------------------------------------------------------

    def cmd(
        self,
        argv: Sequence[str | int | PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        hosts: Iterable[str] | None = None,
    ) -> Results:
        """Run ``argv`` on each host without a shell: every element arrives as one argument."""
        return self._run(Command(tuple(map(str, argv)), dict(env or {})), timeout, hosts)

    def shell(
        self,
        script: str,
        *,
        args: Sequence[str | int] = (),
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        hosts: Iterable[str] | None = None,
    ) -> Results:
        """Run a fixed ``/bin/sh`` script, for pipes and fallbacks.

        Never paste values into ``script``: each parameter arrives as the
        environment variable ``OM_<NAME>`` (booleans as 1/0) and ``args`` as
        ``"$1"``, ``"$2"``…
        """
        variables = {
            f"OM_{name.upper()}": _env_value(value)
            for name, value in self._params.items()
            if value is not None
        }
        variables.update(env or {})
        argv = (*SHELL, script, "omserver", *map(str, args))
        return self._run(Command(argv, variables), timeout, hosts)

    def copy(
        self,
        src: str,
        dest: str,
        mode: str = "0644",
        *,
        timeout: float | None = None,
        hosts: Iterable[str] | None = None,
    ) -> Results:
        """Copy ``src`` from the master's files folder (Salt file_roots / ansible.files_dir)."""
        return self._run(Copy(src, dest, mode), timeout, hosts)

    def service(
        self,
        name: str,
        action: str,
        *,
        timeout: float | None = None,
        hosts: Iterable[str] | None = None,
    ) -> Results:
        """start / stop / restart / reload ``name`` with each host's service manager."""
        return self._run(Service(name, action), timeout, hosts)

    def report(self, result: HostResult) -> None:
        """Record a result made outside the steps (the book-style module adapter does)."""
        if result.host not in {t.hostname for t in self.targets}:
            raise ModuleError(f"{result.host} is not a host in play")
        result.stdout, cut_out = cap_output(result.stdout, self._limit)
        result.stderr, cut_err = cap_output(result.stderr, self._limit)
        result.truncated = result.truncated or cut_out or cut_err
        if not self._report_step:
            self._steps += 1
            self._report_step = self._steps
        result.step, result.action = self._report_step, result.action or "report"
        result.started = result.started or time.time() - result.duration
        self._announce(result.step, result.action, [result.host])
        self._accept(result, {})

    # -- plumbing -------------------------------------------------------------------

    def _run(self, step: Step, timeout: float | None, hosts: Iterable[str] | None) -> Results:
        results: Results = {}
        targets = list(self.targets)
        if hosts is not None:
            chosen = set(hosts)
            targets = [t for t in targets if t.hostname in chosen]
        if not targets:
            return results
        self._steps += 1
        number, action = self._steps, self._mask(step.describe())[:ACTION_CHARS]
        names = [t.hostname for t in targets]
        started = time.time()
        self._announce(number, action, names)

        def accept(result: HostResult) -> None:
            if result.host in names and result.host not in results:
                result.step, result.action, result.started = number, action, started
                self._accept(result, results)

        def output(host: str, stream: str, text: str) -> None:
            if host in names and host not in results and self._output is not None:
                self._output(host, number, stream, self._mask(text))

        remaining = self._deadline - time.monotonic()
        budget = remaining if timeout is None else min(timeout, remaining)
        if budget <= 0:
            for name in names:
                accept(HostResult(name, "timeout", stderr="the job ran out of time"))
        else:
            self._backend.run(
                step,
                targets,
                timeout=budget,
                output_limit=self._limit,
                emit=accept,
                output=output if self._output is not None else None,
            )
        return results

    def _mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def _accept(self, result: HostResult, results: Results) -> None:
        result.stdout, result.stderr = self._mask(result.stdout), self._mask(result.stderr)
        results[result.host] = result
        self.results[result.host] = result
        self._emit(result)
        if not result.ok:
            self.targets = [t for t in self.targets if t.hostname != result.host]


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
