"""The one ``multiprocessing`` forkserver the daemon forks its child processes from.

Job processes (:mod:`omserver.jobs.execution`) and module inspections
(:mod:`omserver.modules.inspection`) both run code someone dropped in a folder, so both run
in a child that can be killed. They come from a forkserver, never from the
multi-threaded daemon itself, and that forkserver imported Salt and Ansible
once, so a child starts with them loaded.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
from multiprocessing.context import ForkServerContext

# Beyond the backends, Salt and Ansible import these lazily on their first call: left
# out, each job would pay ~0.1 s (Salt) and ~0.3 s (Ansible) to import them again.
PRELOAD = [
    "omserver.jobs.process",
    "omserver.backends.saltstack",
    "salt.master",
    "salt.transport.tcp",
    "salt.transport.zeromq",
    "omserver.backends.ansible",
    "ansible.executor.process.worker",
    "ansible.executor.task_executor",
    "ansible.plugins.action.command",
    "ansible.plugins.action.copy",
    "ansible.plugins.action.service",
    "ansible.plugins.connection.local",
    "ansible.plugins.connection.ssh",
    "ansible.plugins.shell.sh",
    "ansible.plugins.strategy.linear",
]


def context() -> ForkServerContext:
    """The forkserver context, its preload set before whoever starts it first."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def ensure_running() -> None:
    context()
    multiprocessing.forkserver.ensure_running()
