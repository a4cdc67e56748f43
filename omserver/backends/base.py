"""The one interface every execution backend implements.

A backend turns a step (:class:`~omserver.sdk.steps.Command`, ``Copy`` or
``Service``) into its engine's native call on many hosts at once, and reports
each host's :class:`HostResult` through ``emit`` the moment that host
finishes. It emits exactly one result for every target, including those that
never answered.

A ``Command`` step's output also goes to ``output(host, stream, text)`` while
the command runs, kept as :class:`~omserver.backends.capture.Capture` keeps
it: the host's final ``stdout``/``stderr`` begin with exactly the text that
went out live, so the live view and the record never disagree.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

from omserver.config import Config
from omserver.sdk.results import HostResult, Target
from omserver.sdk.steps import Step

Emit = Callable[[HostResult], None]
Output = Callable[[str, str, str], None]  # (host, "stdout" or "stderr", text)
# None instead of an Output: no live output wanted (modules.live_output = false), so the
# backend runs the step with its engine's plain call.


class Backend(ABC):
    """Runs steps on hosts through one engine; made once per job, closed after it."""

    name: str
    # Called as on_publish(engine_job_id, hosts) right after the engine took a step for
    # those hosts, from the thread in run(), so that a daemon restarted mid-step can
    # still fetch the results (Salt: the jid, for saltstack.cached_results; a step
    # published twice, as after a module sync, calls it twice). It must not raise.
    # Backends whose engine keeps no results to fetch never call it.
    on_publish: Callable[[str, list[str]], None] | None = None

    def __init__(self, config: Config) -> None:
        self.config = config

    @abstractmethod
    def run(
        self,
        step: Step,
        targets: Sequence[Target],
        *,
        timeout: float,
        output_limit: int,
        emit: Emit,
        output: Output,
    ) -> None:
        """Run ``step`` on ``targets``; ``emit`` each host's result as it finishes.

        ``output`` may be called from any thread, never after that host's result.

        ``timeout`` bounds the step; a host that has not finished by then is
        emitted as ``timeout``, one that cannot be reached as ``unreachable``.
        """

    def close(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Release connections; the default has nothing to release."""
