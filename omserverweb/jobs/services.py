"""Starting, cancelling and re-running jobs on behalf of a web user.

The web creates the job, with one part per zone its servers are in, and sends
each part to its zone's daemon, which claims it and records its hosts' results
into the same job. A part whose daemon cannot take it is closed here, its hosts
failed with the reason, so history shows every attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction

from omserver import client as daemon
from omserver.sdk import MASK, ParamError, mask_params, validate_params
from omserver.vocabulary import ACTIVE_STATUSES, JobStatus
from omserverweb.access.services import authorize_run
from omserverweb.endpoints import Endpoint, endpoints_for, refusal_reason
from omserverweb.inventory.models import Server
from omserverweb.jobs import recorder
from omserverweb.jobs.models import Job, JobPart
from omserverweb.modules.models import ModuleDefinition

log = logging.getLogger("omserverweb.jobs")
WEB_CLIENT = "web"


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
    if not module.enabled:
        raise JobRequestError(f"module {module.pk} is disabled", "module")
    if not servers:
        raise JobRequestError("pick at least one server", "servers")
    disabled = [s.hostname for s in servers if not s.enabled]
    if disabled:
        raise JobRequestError(f"disabled servers: {', '.join(disabled)}", "servers")
    authorize_run(user, module, servers)
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
    parts = {part.zone: part for part in job.parts.all()}
    who = user.get_username()
    sends = [
        partial(_send_part, job, parts[endpoint.zone], endpoint, members, clean, who)
        for endpoint, members in groups.items()
    ]
    if len(sends) == 1:
        sends[0]()
    else:  # one zone's slow daemon must not hold up the others
        with ThreadPoolExecutor(len(sends), thread_name_prefix="zone") as pool:
            for future in [pool.submit(_with_own_connection, send) for send in sends]:
                future.result()
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
    part: JobPart,
    endpoint: Endpoint,
    servers: list[Server],
    params: dict[str, Any],
    requested_by: str,
) -> None:
    try:
        endpoint.client().submit(
            job.module_id,
            [s.as_target() for s in servers],
            params,
            timeout=job.timeout,
            requested_by=requested_by,
            rollout=job.rollout,
            job=job.pk,
        )
    except daemon.DaemonError as exc:
        reason = refusal_reason(exc, endpoint)
        log.error("job %d: zone %s not started: %s", job.pk, endpoint.zone, reason)
        recorder.fail_unclaimed_part(part.pk, reason)


def _with_own_connection(work: Callable[[], None]) -> None:
    try:
        work()
    finally:
        connection.close()  # the pool thread's own database connection


def rerun_params(job: Job, overrides: dict[str, Any]) -> dict[str, Any]:
    """A job's parameters for a re-run; secrets were never stored, so they are asked again."""
    params = {**job.params, **overrides}
    masked = [
        field["name"]
        for field in job.module.params_schema
        if field.get("sensitive") and params.get(field["name"]) == MASK
    ]
    if masked:
        raise JobRequestError(
            f"enter the sensitive parameter(s) again: {', '.join(masked)}", "params"
        )
    return params


class DaemonUnavailableError(RuntimeError):
    """The daemon cannot be asked right now; the message says why."""


def cancel_job(job: Job) -> None:
    """Ask every daemon still running a part of the job to stop it."""
    zones = list(job.parts.filter(status__in=ACTIVE_STATUSES).values_list("zone", flat=True))
    failures = []
    for endpoint in set(endpoints_for(zones or [job.daemon]).values()):
        try:
            endpoint.client().cancel(job.pk)
        except daemon.DaemonError as exc:
            failures.append(refusal_reason(exc, endpoint))
    if failures:
        raise DaemonUnavailableError("; ".join(failures))
