"""Starting, cancelling and re-running jobs on behalf of a web user.

The daemon records every job it accepts; the web records only the attempts the
daemon never saw (daemon down), so that history still shows them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from omserver import client as daemon
from omserver.sdk import MASK, ParamError, mask_params, validate_params
from omserverweb.access.services import authorize_run
from omserverweb.daemon import daemon_address, daemon_client
from omserverweb.inventory.models import Server
from omserverweb.jobs.models import Job, JobStatus
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
    """Authorize, validate and hand a job to the daemon; returns its record."""
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
    targets = [s.as_target() for s in servers]
    try:
        job_id = daemon_client().submit(
            module.pk,
            targets,
            clean,
            timeout=timeout,
            requested_by=user.get_username(),
            rollout=rollout,
        )
    except (daemon.DaemonUnreachable, daemon.ClientConfigError, daemon.FrameRefused) as exc:
        reason = unreachable_reason(exc)
        log.error("job not started: %s", reason)
        return _record_failed_attempt(user, module, targets, clean, timeout, rollout, reason)
    except daemon.InvalidParameters as exc:
        raise JobRequestError(str(exc), f"params.{exc.field}") from exc
    except daemon.UnknownModule as exc:
        raise JobRequestError(str(exc), "module") from exc
    return Job.objects.get(pk=job_id)


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


def unreachable_reason(exc: daemon.DaemonError) -> str:
    """What an operator reads when the daemon could not take a request."""
    address = daemon_address()
    if isinstance(exc, daemon.ClientConfigError):
        return f"the web console has no usable daemon key (OMSERVER_DAEMON_CLIENT_KEY): {exc}"
    if isinstance(exc, daemon.FrameRefused):
        return f"master-control daemon at {address} refused the web console's key: {exc}"
    return f"master-control daemon unreachable at {address}: {exc}"


def _record_failed_attempt(
    user: AbstractBaseUser,
    module: ModuleDefinition,
    targets: list[dict[str, Any]],
    params: dict[str, Any],
    timeout: float | None,
    rollout: dict[str, Any] | None,
    reason: str,
) -> Job:
    now = timezone.now()
    return Job.objects.create(
        module=module,
        requested_by=user.get_username(),
        client=WEB_CLIENT,
        targets=[t["hostname"] for t in targets],
        params=mask_params(module.params_schema, params),
        timeout=timeout,
        rollout=rollout,
        status=JobStatus.FAILED,
        error=reason,
        started_at=now,
        finished_at=now,
    )


class DaemonUnavailableError(RuntimeError):
    """The daemon cannot be asked right now; the message says why."""


def cancel_job(job: Job) -> None:
    try:
        daemon_client().cancel(job.pk)
    except (daemon.DaemonUnreachable, daemon.ClientConfigError, daemon.FrameRefused) as exc:
        raise DaemonUnavailableError(unreachable_reason(exc)) from exc
