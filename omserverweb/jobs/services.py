"""Starting, cancelling and re-running jobs on behalf of a web user.

The web creates the job, with one part per zone its servers are in, and sends
each part to its zone's daemon, which claims it and records its hosts' results
into the same job. A part whose daemon cannot take it is closed here, its hosts
failed with the reason, so history shows every attempt. The parts go out at
once, each from its daemon's own threads with a short timeout: a hung daemon
costs its own zone's hosts, not the other zones' nor the caller's time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils.translation import ngettext

from omserver import client as daemon
from omserver.sdk import MASK, ParamError, mask_params, validate_params
from omserver.vocabulary import ACTIVE_STATUSES, JobStatus
from omserverweb.access.services import NotPermittedError, authorize_run
from omserverweb.endpoints import (
    SEND_RETRY_FOR,
    ZONE_TIMEOUT,
    Endpoint,
    each_at_once,
    endpoints_for,
    refusal_reason,
)
from omserverweb.inventory.models import Server
from omserverweb.jobs import recorder
from omserverweb.jobs.models import Job, JobPart
from omserverweb.modules.models import ModuleDefinition

log = logging.getLogger("omserverweb.jobs")
WEB_CLIENT = "web"
SEND_WAIT = 0.5  # seconds a request waits for its zones' daemons to take their parts
SENDERS_PER_DAEMON = 4
_senders: dict[str, ThreadPoolExecutor] = {}  # daemon address -> its sender threads
_senders_lock = threading.Lock()


class JobRequestError(ValueError):
    """The request cannot become a job; ``field`` names the culprit when known."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def start_job(
    user: AbstractBaseUser,
    module: ModuleDefinition,
    servers: Sequence[Server],
    params: dict[str, Any],
    *,
    timeout: float | None = None,
    rollout: dict[str, Any] | None = None,
) -> Job:
    """Authorize, validate, record and hand the job to its zones' daemons; its record."""
    if not servers:
        raise JobRequestError("pick at least one server", "servers")
    try:  # first: what is said next is only for servers the user may know of
        authorize_run(user, module, servers)
    except NotPermittedError as exc:
        raise JobRequestError(str(exc), "servers") from exc
    if not module.enabled:
        raise JobRequestError(f"module {module.pk} is disabled", "module")
    disabled = [s.hostname for s in servers if not s.enabled]
    if disabled:
        raise JobRequestError(f"disabled servers: {', '.join(disabled)}", "servers")
    try:
        clean = validate_params(module.params_schema, params)
    except ParamError as exc:
        raise JobRequestError(str(exc), f"params.{exc.field}") from exc
    zones = endpoints_for(s.zone for s in servers)
    groups: dict[Endpoint, list[Server]] = {}
    for server in servers:
        groups.setdefault(zones[server.zone], []).append(server)
    if rollout and len(groups) > 1:
        raise JobRequestError(
            "a rollout runs within one zone: pick servers of one zone, or run without rollout",
            "rollout",
        )
    job = _create_job(user, module, servers, groups, clean, timeout, rollout)
    parts = {part.zone: part.pk for part in job.parts.all()}
    sends = {
        _sender(endpoint).submit(
            _send_part, job, endpoint, [s.as_target() for s in members], clean, user.get_username()
        ): parts[endpoint.zone]
        for endpoint, members in groups.items()
    }
    # A zone whose daemon hangs must hold up neither the others nor the caller: answer
    # after SEND_WAIT with what is known; a late refusal fails its part when it comes.
    done, late = wait(sends, timeout=SEND_WAIT)
    for future in done:
        _record_refusal(sends[future], future)
    caller = threading.current_thread()
    for future in late:
        future.add_done_callback(partial(_record_late_refusal, sends[future], caller))
    job.refresh_from_db()
    return job


def _create_job(
    user: AbstractBaseUser,
    module: ModuleDefinition,
    servers: Sequence[Server],
    groups: dict[Endpoint, list[Server]],
    params: dict[str, Any],
    timeout: float | None,
    rollout: dict[str, Any] | None,
) -> Job:
    with transaction.atomic():
        job = Job.objects.create(
            module=module,
            requested_by=user.get_username(),
            client=WEB_CLIENT,
            targets=[s.hostname for s in servers],
            params=mask_params(module.params_schema, params),
            timeout=timeout,
            rollout=rollout,
            status=JobStatus.QUEUED,
        )
        JobPart.objects.bulk_create(
            JobPart(job=job, zone=endpoint.zone, hosts=sorted(s.hostname for s in members))
            for endpoint, members in groups.items()
        )
    return job


def _send_part(
    job: Job,
    endpoint: Endpoint,
    targets: list[dict[str, Any]],
    params: dict[str, Any],
    requested_by: str,
) -> str:
    """Hand one zone its part; why it could not take it, or "" when it did."""
    try:
        endpoint.client(ZONE_TIMEOUT, SEND_RETRY_FOR).submit(
            job.module_id,
            targets,
            params,
            timeout=job.timeout,
            requested_by=requested_by,
            rollout=job.rollout,
            job=job.pk,
        )
    except daemon.DaemonError as exc:
        reason = refusal_reason(exc, endpoint)
    except Exception as exc:  # a bug here must not leave the part queued for minutes
        log.exception("job %d: zone %s: sending the part failed", job.pk, endpoint.zone)
        reason = f"zone {endpoint.zone}: the web console could not send it: {exc!r}"
    else:
        return ""
    log.error("job %d: zone %s not started: %s", job.pk, endpoint.zone, reason)
    return reason


def _record_refusal(part_id: int, sent: Future[str]) -> None:
    reason = sent.result()
    if reason:
        recorder.fail_unclaimed_part(part_id, reason)


def _record_late_refusal(part_id: int, caller: threading.Thread, sent: Future[str]) -> None:
    """A straggler's outcome, in its sender thread (or the caller's, had it just ended)."""
    if threading.current_thread() is caller:
        _record_refusal(part_id, sent)
        return
    try:
        _record_refusal(part_id, sent)
    except Exception:
        log.exception("part %d: recording the daemon's refusal failed", part_id)
    finally:
        connection.close()  # the sender thread's own database connection


def _sender(endpoint: Endpoint) -> ThreadPoolExecutor:
    """The threads that send parts to one daemon: kept, so that their connections are
    reused; one per daemon, so that a hung one keeps only its own busy."""
    with _senders_lock:
        pool = _senders.get(endpoint.address)
        if pool is None:
            pool = _senders[endpoint.address] = ThreadPoolExecutor(
                SENDERS_PER_DAEMON, thread_name_prefix=f"send-{endpoint.zone}"
            )
        return pool


def rerun_params(job: Job, overrides: dict[str, Any]) -> dict[str, Any]:
    """A job's parameters for a re-run; secrets were never stored, so they are asked again."""
    params = {**job.params, **overrides}
    masked = [
        field["name"]
        for field in job.module.params_schema
        if field.get("sensitive") and params.get(field["name"]) == MASK
    ]
    if masked:
        again = ngettext(
            "enter the sensitive parameter again: %(names)s",
            "enter the sensitive parameters again: %(names)s",
            len(masked),
        )
        raise JobRequestError(again % {"names": ", ".join(masked)}, "params")
    return params


class DaemonUnavailableError(RuntimeError):
    """The daemon cannot be asked right now; the message says why."""


def cancel_job(job: Job) -> None:
    """Ask every daemon still running a part of the job to stop it, all at once."""
    zones = list(job.parts.filter(status__in=ACTIVE_STATUSES).values_list("zone", flat=True))

    def cancel(endpoint: Endpoint) -> str:
        try:
            client = endpoint.client(ZONE_TIMEOUT)
        except daemon.DaemonError as exc:  # a key that is not one
            return refusal_reason(exc, endpoint)
        try:
            client.cancel(job.pk)
        except daemon.DaemonError as exc:
            return refusal_reason(exc, endpoint)
        finally:
            client.close_thread()  # the pool's threads end with this call
        return ""

    targets = sorted(set(endpoints_for(zones or [job.daemon]).values()), key=lambda e: e.zone)
    failures = [reason for reason in each_at_once(cancel, targets) if reason]
    if failures:
        raise DaemonUnavailableError("; ".join(failures))
