"""What a running job reports, in order, from its process to the engine.

Besides each step's :class:`~omserver.sdk.HostResult`: a step starting, what
steps print while they run, a step the job's end cut short, and a host the
module is done with. The engine writes each into the record as it comes.
"""

from __future__ import annotations

from dataclasses import dataclass

from omserver.sdk import HostResult


@dataclass(frozen=True)
class StepStarted:
    step: int
    action: str
    hosts: tuple[str, ...]
    started: float  # epoch seconds


@dataclass(frozen=True)
class Output:
    """Live output of running steps: ``(host, step, stream, text)`` in printed order."""

    chunks: tuple[tuple[str, int, str, str], ...]


@dataclass(frozen=True)
class StepCut:
    """A step the job's end (cancel, timeout, a crash) stopped while it ran: what it
    printed is kept, and ``status``/``note`` say why it ended."""

    host: str
    step: int
    status: str
    note: str


@dataclass(frozen=True)
class HostDone:
    """The module is done with ``host``: its status in the job, and why when no step says."""

    host: str
    status: str
    error: str = ""


Event = StepStarted | Output | HostResult | StepCut | HostDone
