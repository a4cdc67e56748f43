"""Each client key's scope, enforced before an operation reaches the engine.

A frame that passed the gate comes from a key holder, not from someone trusted
with everything: ``ScopedHandler`` lets an operation through only when the
key's scope (:mod:`omserver.protocol.scope`) covers its module, every target,
its ``requested_by`` and the job it reads, waits on, cancels or claims a part of.
Every refusal is logged, written to the record (so the web can show it) and
answered ``not_permitted`` with "not permitted for this key: …". A host outside
the scope and a host that does not exist get the same answer.

The inventory and the refusal record are the web's; the daemon is handed them
as a ``ScopeRecord`` (the web's ``omserverweb.access.keyscopes``), as it is
handed its ``Recorder``.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from omserver.daemon.service import Handler
from omserver.jobs.durable import RecordUnavailable
from omserver.protocol.operations import OperationError
from omserver.protocol.scope import InventoryHost, Scope
from omserver.sdk import Target

log = logging.getLogger("omserver.scopes")

MAX_SHOWN = 200  # characters of host names a refusal lists


class ScopeRecord(Protocol):
    def inventory_hosts(self, hostnames: list[str]) -> dict[str, InventoryHost]:
        """The enabled inventory servers among ``hostnames``, by name."""

    def job_client(self, job_id: int) -> str | None:
        """The client that created job ``job_id``; None if there is no such job."""

    def key_refused(self, *, client: str, operation: str, reason: str) -> None:
        """Keep a refusal where an operator sees it."""


class ScopeLookup(Protocol):
    def scope_for(self, client_id: str) -> Scope: ...


class NotPermitted(OperationError):  # noqa: N818 (names say what happened)
    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__("not_permitted", f"not permitted for this key: {reason}", field)


class ScopedHandler:
    """A ``Handler`` that checks the caller's scope, then asks the one it wraps."""

    def __init__(self, handler: Handler, keys: ScopeLookup, record: ScopeRecord) -> None:
        self.handler = handler
        self.keys = keys
        self.record = record

    def ping(self, caller: str) -> dict[str, Any]:
        return self.handler.ping(caller)

    def modules(self, caller: str) -> dict[str, Any]:
        return self.handler.modules(caller)

    def submit(self, caller: str, **request: Any) -> int:
        self._check_request(caller, "submit", request)
        return self.handler.submit(caller, **request)

    def run(self, caller: str, *, wait: float, **request: Any) -> dict[str, Any]:
        self._check_request(caller, "run", request)
        return self.handler.run(caller, wait=wait, **request)

    def job(self, caller: str, *, job_id: int, cursor: int) -> dict[str, Any]:
        self._check_job(caller, "job", job_id)
        return self.handler.job(caller, job_id=job_id, cursor=cursor)

    def wait(self, caller: str, *, job_id: int, timeout: float) -> dict[str, Any]:
        self._check_job(caller, "wait", job_id)
        return self.handler.wait(caller, job_id=job_id, timeout=timeout)

    def cancel(self, caller: str, *, job_id: int) -> dict[str, Any]:
        self._check_job(caller, "cancel", job_id)
        return self.handler.cancel(caller, job_id=job_id)

    # -- the checks ------------------------------------------------------------------

    def _check_request(self, caller: str, op: str, request: dict[str, Any]) -> None:
        scope = self.keys.scope_for(caller)
        module = request["module"]
        if not scope.allows_module(module):
            self._refuse(caller, op, scope, f"module {module} is outside its scope", "module")
        requested_by = request.get("requested_by")
        if requested_by is not None and requested_by != caller and not scope.on_behalf:
            reason = f"it may not act on behalf of another user ({requested_by[:150]!r})"
            self._refuse(caller, op, scope, reason, "requested_by")
        if request.get("job") is not None:  # a part of a job someone else made
            self._check_job(caller, op, request["job"], scope, "job")
        outside = self._hosts_outside(scope, request["targets"])
        if outside:
            shown = ", ".join(outside)[:MAX_SHOWN]
            self._refuse(caller, op, scope, f"host(s) outside its scope: {shown}", "targets")

    def _hosts_outside(self, scope: Scope, targets: list[Any]) -> list[str]:
        """The targets' names the scope does not cover. A malformed target is left to
        the engine, which refuses it."""
        named = [t for t in targets if isinstance(t, dict) and isinstance(t.get("hostname"), str)]
        if not scope.hosts:
            return [t["hostname"] for t in named]
        found = self._read(self.record.inventory_hosts, sorted({t["hostname"] for t in named}))
        outside = []
        for target in named:
            name = target["hostname"]
            host = found.get(name)
            if host is not None and not _is_inventory_target(target, host):
                host = None  # an inventory name pointing elsewhere: not that server
            if not scope.allows_host(name, host):
                outside.append(name)
        return outside

    def _check_job(
        self, caller: str, op: str, job_id: int, scope: Scope | None = None, field: str = "job_id"
    ) -> None:
        scope = scope or self.keys.scope_for(caller)
        if scope.all_jobs:
            return
        owner = self._read(self.record.job_client, job_id)
        if owner is not None and owner != caller:  # no such job: the engine says so
            self._refuse(caller, op, scope, f"job {job_id} is another client's", field)

    def _refuse(self, caller: str, op: str, scope: Scope, reason: str, field: str) -> None:
        if not scope.assigned:
            reason += " (the key has no scope yet: `omserver keys scope NAME …` gives it one)"
        log.warning("refused %s from client %s: not permitted: %s", op, caller, reason)
        try:
            self.record.key_refused(client=caller, operation=op, reason=reason)
        except Exception:
            log.exception("could not record the refusal of %s from client %s", op, caller)
        raise NotPermitted(reason, field)

    @staticmethod
    def _read(call: Any, arg: Any) -> Any:
        try:
            return call(arg)
        except OperationError:
            raise
        except Exception as exc:
            raise RecordUnavailable(exc) from exc


def _is_inventory_target(target: dict[str, Any], host: InventoryHost) -> bool:
    """A target named by hostname alone, or described exactly as the inventory has it."""
    if set(target) == {"hostname"}:
        return True
    try:
        return Target(**target) == Target(**host.target)
    except (TypeError, ValueError):
        return False
