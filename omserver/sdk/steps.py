"""The steps a module can run on hosts; each backend translates them to its engine.

``describe()`` is what the job record shows as the step's action.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from omserver.sdk.errors import ModuleError

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._-]{0,127}")
SERVICE_ACTIONS = ("start", "stop", "restart", "reload")
MODE = re.compile(r"0?[0-7]{3,4}")
SHELL = ("/bin/sh", "-c")  # how ctx.shell runs its script


@dataclass(frozen=True)
class Command:
    """Run ``argv`` (no shell) with extra environment variables."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.argv:
            raise ModuleError("a command needs at least a program name")
        for arg in (*self.argv, *self.env.values()):
            if not isinstance(arg, str) or "\x00" in arg:
                raise ModuleError(f"command arguments must be text without NUL: {arg!r}")
        for name in self.env:
            if not ENV_NAME.fullmatch(name):
                raise ModuleError(f"bad environment variable name {name!r}")

    def describe(self) -> str:
        if self.argv[:2] == SHELL:  # ctx.shell: the script's first line, then its arguments
            script, args = self.argv[2], self.argv[4:]
            first = script.strip().splitlines()[0] if script.strip() else ""
            more = " …" if "\n" in script.strip() else ""
            return " ".join(filter(None, ["sh:", first + more, shlex.join(args)]))
        return shlex.join(self.argv)


@dataclass(frozen=True)
class Copy:
    """Copy ``src`` (relative to the master's files folder) to ``dest`` with ``mode``."""

    src: str
    dest: str
    mode: str = "0644"

    def __post_init__(self) -> None:
        if self.src.startswith("/") or ".." in self.src.split("/") or not self.src.strip("/"):
            raise ModuleError(f"copy source {self.src!r} must be a path inside the files folder")
        if not self.dest.startswith("/") or posixpath.normpath(self.dest) != self.dest:
            raise ModuleError(f"copy destination {self.dest!r} must be a normalized absolute path")
        if not MODE.fullmatch(self.mode):
            raise ModuleError(f"copy mode {self.mode!r} must be octal like 0644")

    def describe(self) -> str:
        return f"copy {self.src} → {self.dest} ({self.mode})"


@dataclass(frozen=True)
class Service:
    """Start, stop, restart or reload the service ``name`` with the host's service manager."""

    name: str
    action: str

    def __post_init__(self) -> None:
        if not SERVICE_NAME.fullmatch(self.name):
            raise ModuleError(f"bad service name {self.name!r}")
        if self.action not in SERVICE_ACTIONS:
            raise ModuleError(f"service action must be one of {', '.join(SERVICE_ACTIONS)}")

    def describe(self) -> str:
        return f"service {self.name} {self.action}"


Step = Command | Copy | Service


def step_note(step: Step) -> dict[str, str]:
    """What reading a step's results back needs (a job's journal keeps it): its kind, and
    for a service its name and action. Never a command's arguments: they may hold secrets."""
    if isinstance(step, Service):
        return {"kind": "service", "name": step.name, "action": step.action}
    return {"kind": "copy" if isinstance(step, Copy) else "command"}


def step_from_note(note: dict[str, str]) -> Step:
    """A step of the kind ``note`` says, good for reading its results (not for running)."""
    if note["kind"] == "service":
        return Service(note["name"], note["action"])
    if note["kind"] == "copy":
        return Copy("noted", "/noted")
    return Command(("noted",))
