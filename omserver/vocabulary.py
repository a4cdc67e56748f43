"""The words every part of OMServer shares, each defined once.

Job and host statuses, the rule that turns host results into a job's final
status, the backend names and the ``Mid_<id>.py`` file name. The daemon, its
clients and the web's models all build on these (the models' choices are made
from them), so a new status or backend is added here and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIAL = "partial"  # some hosts ok, some not
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # its daemon stopped before it ended


ACTIVE_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})
FINAL_STATUSES = frozenset(JobStatus) - ACTIVE_STATUSES

# When a job (or one of its zone parts) ended this way, that is the job's status,
# whatever its hosts returned; the first in this order wins.
OVERRIDING_ENDINGS = (JobStatus.CANCELLED, JobStatus.INTERRUPTED, JobStatus.TIMEOUT)


class HostStatus(StrEnum):
    """A host's status in a job, and a step's status on a host."""

    RUNNING = "running"  # a step still runs there, or the module is not done with it
    OK = "ok"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"  # stopped by a cancel while it ran
    NOT_RUN = "not_run"  # the job never reached the host (cancel, timeout, rollout stop)
    UNKNOWN = "unknown"  # its daemon and job process both stopped while it ran


def final_status(ok_hosts: int, hosts: int, endings: Collection[str] = ()) -> JobStatus:
    """A finished job's status: how it ended if that overrides (see
    ``OVERRIDING_ENDINGS``), else ``succeeded`` when all ``hosts`` are ok,
    ``partial`` when some are, ``failed`` when none is."""
    for ending in OVERRIDING_ENDINGS:
        if ending in endings:
            return ending
    if hosts and ok_hosts == hosts:
        return JobStatus.SUCCEEDED
    return JobStatus.PARTIAL if ok_hosts else JobStatus.FAILED


# Backend name -> how it is shown. Each has an adapter in ``omserver.backends.<name>``.
BACKENDS = {"saltstack": "SaltStack", "ansible": "Ansible"}

# A task module's file: ``Mid_<id>.py``, the id a positive number of up to nine digits.
MODULE_FILE = re.compile(r"Mid_([1-9][0-9]{0,8})\.py")
