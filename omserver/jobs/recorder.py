"""What the engine writes the record of truth through.

The engine is handed a ``Recorder`` when the daemon starts; it never knows
where the record lives. The web's jobs app implements it over the shared
database (``omserverweb.jobs.recorder``); the engine's unit tests use one in
memory. Every method is called from the daemon's worker and connection
threads, each call its own short unit of work, so that readers see results as
they arrive. The engine wraps it in :class:`~omserver.jobs.durable.DurableRecorder`,
which keeps the writes the record cannot take yet and replays them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any, Protocol

from omserver.sdk import HostResult


class Recorder(Protocol):
    def inventory_targets(self, hostnames: list[str]) -> dict[str, dict[str, Any]]:
        """Target fields of the enabled inventory servers among ``hostnames``, by name."""

    def report_modules(self, modules: list[dict[str, Any]]) -> None:
        """The module files the daemon found (see ``ModuleRegistry.reports``): a new one is
        recorded new and disabled; an enabled one whose parameter schema changed is
        disabled until an operator enables it again."""

    def module_enabled(self, module_id: int, schema: list) -> bool:
        """Whether an operator enabled the module, with this parameter schema."""

    def create_job(
        self,
        *,
        module_id: int,
        requested_by: str,
        client: str,
        targets: list[str],
        params: dict[str, Any],
        rollout: dict[str, Any] | None,
        backend: str,
        timeout: float,
        daemon: str,
        request: str | None,
        order: str,
    ) -> int:
        """A new queued job; its id. ``request``: the client's id for the submission;
        ``order``: what to run, sealed (see :mod:`omserver.jobs.orders`)."""

    def job_for_request(self, client: str, request: str) -> int | None:
        """The job ``client`` created with the request id ``request``, if any."""

    def claim_part(
        self, job_id: int, module_id: int, hosts: list[str], daemon: str, order: str
    ) -> int | None:
        """Take the unclaimed part of a web job with exactly these hosts, keeping its sealed
        ``order``; its id, or None."""

    def queued(
        self, daemon: str, exclude: list[int], limit: int, job_id: int | None = None
    ) -> list[tuple[int, int | None, str]]:
        """The oldest of ``daemon``'s queued jobs and parts but the jobs in ``exclude``
        (or only job ``job_id``): ``(job, part or None, sealed order)``."""

    def claimed(self, instance: str) -> list[tuple[int, int | None, str]]:
        """What daemon ``instance`` runs, by the record: ``(job, part or None, order)``."""

    def claim(
        self, job_id: int, part_id: int | None, daemon: str, instance: str, locks: list
    ) -> str:
        """Take a queued job (or part) of ``daemon``'s queue for ``instance`` to run, and
        mark it running: ``ok``; ``taken`` when it is not queued (any more); ``busy``
        while a running job of the queue holds one of its exclusive ``locks``."""

    def ask_cancel(self, job_id: int) -> bool:
        """Tell the daemons running the job to stop it; False if none runs it."""

    def cancels(self, instance: str) -> list[int]:
        """The jobs ``instance`` runs that someone asked to stop."""

    def recorded_output(self, job_id: int) -> dict[str, list]:
        """What the record holds of a job's steps: ``ended``, ``[host, step]`` of each step
        that ended; ``printed``, ``[host, step, stream, characters]`` of live output."""

    def start_step(
        self, job_id: int, step: int, action: str, hosts: list[str], started: float
    ) -> None:
        """Step ``step`` started on ``hosts`` (``started``: epoch seconds).

        Like every write about a job's hosts, dropped when the job is closed already.
        """

    def save_output(self, job_id: int, chunks: list[tuple[str, int, str, str]]) -> None:
        """What running steps printed: ``(host, step, stream, text)`` in order."""

    def save_step(self, job_id: int, result: HostResult) -> None:
        """A host's result of a step: the step's record from now on (its live output
        is a prefix of it, and goes)."""

    def cut_step(self, job_id: int, host: str, step: int, status: str, note: str) -> None:
        """End a running step with ``status``, keeping what it printed live, and ``note``."""

    def finish_hosts(self, job_id: int, ends: list[tuple[str, str, str]]) -> None:
        """The module is done with these hosts: ``(host, status, error)``, each host's
        status in the job and, when no step says it, why."""

    def finish_job(self, job_id: int, status: str, error: str = "", rollout_stop: str = "") -> None:
        """Close the job, unless it is closed already (its first ending stays)."""

    def finish_part(
        self, part_id: int, status: str, error: str = "", rollout_stop: str = ""
    ) -> None:
        """Close a zone's part, and its job once no part is left running."""

    def interrupt_unfinished(
        self, daemon: str, instance: str, reason: str, keep: Iterable[int] = ()
    ) -> int:
        """Mark what daemon ``instance`` ran interrupted, but the jobs in ``keep``, and what
        ``daemon``'s queue holds that nobody can run; how many."""

    def fail_undelivered_parts(self, older_than: timedelta, reason: str) -> int:
        """Fail the parts of web jobs no daemon took within ``older_than``; how many."""

    def replay(self, writes: list[tuple[str, str, tuple[Any, ...]]]) -> None:
        """Each ``(key, name, args)``, in order: call the write method ``name`` with
        ``args`` unless a write with ``key`` was replayed before; all in one
        transaction with a note of each key (see :mod:`omserver.jobs.durable`)."""

    def check(self) -> None:
        """Raise when the record cannot be reached (a cheap round trip)."""

    def job_state(self, job_id: int, after: int = 0) -> dict[str, Any] | None:
        """The job as JSON data with its host results written after ``after``; None if
        there is no such job."""
