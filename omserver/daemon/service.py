"""The daemon's rpyc service: one opaque frame in, one opaque frame out.

``Gate`` does all the checking and dispatching and knows nothing of rpyc;
``DaemonService`` is the thin rpyc face that exposes exactly ``exchange``.

What happens to a frame, in order:

1. not bytes, over ``daemon.max_frame_bytes``, an unreadable header, an
   unknown or revoked client, or a bad tag: a plain ``wire.refusal()`` (there
   is no key it could be sealed with that the sender is known to hold);
2. a malformed body, a timestamp outside ±``daemon.clock_skew``, a nonce seen
   before, an unknown operation or bad arguments: a sealed error answer;
3. otherwise the operation runs on the ``Handler`` and its result (or its
   ``OperationError``) is sealed for the client and bound to the request nonce.

Every refusal in 1 and 2 is logged with the peer address and never executed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from importlib.metadata import version
from typing import Any, Protocol

import rpyc
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from omserver.daemon.admission import Admission
from omserver.protocol import wire
from omserver.protocol.operations import OPERATIONS, OperationError, arguments
from omserver.protocol.replay import ReplayCache

log = logging.getLogger("omserver.service")

VERSION = version("omserver")


class Handler(Protocol):
    """What runs the operations (:mod:`omserver.daemon.handlers` implements it).

    ``caller`` is the authenticated client id; the arguments have been
    type-checked against ``OPERATIONS``. Methods are called from one thread per
    client connection at once. Each returns JSON data (dicts, lists, str, int,
    float, bool, None) or raises ``OperationError``; any other exception is
    logged and answered as ``internal``.
    """

    def ping(self, caller: str) -> dict[str, Any]:
        """``{"backend": str, "modules": int}``; the service adds ``version``."""

    def modules(self, caller: str) -> dict[str, Any]:
        """``{"modules": [metadata…], "errors": {path: message}}``."""

    def submit(
        self,
        caller: str,
        *,
        module: int,
        targets: list[Any],
        params: dict[str, Any],
        timeout: float | None,
        requested_by: str | None,
        rollout: dict[str, Any] | None,
        job: int | None,
        request: str | None,
    ) -> int:
        """Queue a job (or, given ``job``, claim this daemon's part of it); its id at once."""

    def job(self, caller: str, *, job_id: int, cursor: int) -> dict[str, Any]:
        """Status plus the host results recorded after ``cursor``."""

    def wait(self, caller: str, *, job_id: int, timeout: float) -> dict[str, Any]:
        """Like ``job`` (cursor 0) once the job ended or ``timeout`` seconds passed."""

    def cancel(self, caller: str, *, job_id: int) -> dict[str, Any]:
        """Stop the job (queued or running); its state afterwards."""

    def run(
        self,
        caller: str,
        *,
        module: int,
        targets: list[Any],
        params: dict[str, Any],
        timeout: float | None,
        requested_by: str | None,
        rollout: dict[str, Any] | None,
        job: int | None,
        request: str | None,
        wait: float,
    ) -> dict[str, Any]:
        """Submit, then ``wait`` up to ``wait`` seconds; the state (it may still run)."""


# -- the gate -------------------------------------------------------------------------


class KeyLookup(Protocol):
    def cipher_for(self, client_id: str) -> AESGCM | None: ...


class Gate:
    """Checks each frame, runs its operation on the handler, seals the answer."""

    def __init__(
        self,
        keys: KeyLookup,
        handler: Handler,
        *,
        clock_skew: float,
        max_frame_bytes: int,
        replay: ReplayCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.handler = handler
        self.max_frame_bytes = max_frame_bytes
        self.replay = replay or ReplayCache(clock_skew, not_before=clock())
        self.clock = clock

    def exchange(
        self, frame: object, peer: str, admitted: Callable[[str], None] = lambda client: None
    ) -> bytes:
        """Answer one frame; never raises. ``admitted`` hears the client id of a frame
        that passed every check, before its operation runs."""
        client = "?"
        try:
            if type(frame) is not bytes:  # a netref would call back into the peer
                raise wire.FrameError("malformed", "a frame is bytes")
            if len(frame) > self.max_frame_bytes:
                raise wire.FrameError("oversize", f"{len(frame)} bytes > {self.max_frame_bytes}")
            sealed = wire.split_request(frame)
            client = sealed.client
            cipher = self.keys.cipher_for(client)
            if cipher is None:
                raise wire.FrameError("unknown_client", "unknown or revoked client")
            plain = wire.decrypt(sealed, cipher)
        except wire.FrameError as exc:
            _refused(peer, client, exc)
            return wire.refusal()
        payload = self._answer(sealed, plain, peer, admitted)
        try:
            return wire.seal_answer(client, cipher, sealed.nonce, payload)
        except (TypeError, ValueError):
            log.exception("the answer to %s is not JSON", client)
            return wire.seal_answer(client, cipher, sealed.nonce, _error("internal", _INTERNAL))

    def _answer(
        self, sealed: wire.Sealed, plain: bytes, peer: str, admitted: Callable[[str], None]
    ) -> dict[str, Any]:
        client = sealed.client
        try:
            request = wire.parse_request(sealed, plain)
            self.replay.admit(client, sealed.nonce, request.ts, self.clock())
            if request.op not in OPERATIONS:
                raise wire.FrameError("unknown_operation", f"no operation {request.op[:40]!r}")
        except wire.FrameError as exc:
            _refused(peer, client, exc)
            return _error(exc.code, exc.message)
        admitted(client)
        try:
            result = self._dispatch(request)
        except OperationError as exc:
            log.info("%s from %s: %s: %s", request.op, client, exc.code, exc.message)
            return _error(exc.code, exc.message, exc.field)
        except Exception:
            log.exception("%s from %s failed", request.op, client)
            return _error("internal", _INTERNAL)
        return {"ok": True, "result": result}

    def _dispatch(self, request: wire.Request) -> Any:
        args = arguments(request.op, request.body)
        result = getattr(self.handler, request.op)(request.client, **args)
        if request.op == "ping":
            result = {"version": VERSION, **result}
        return result


_INTERNAL = "the daemon failed on this request; see its log"


def _refused(peer: str, client: str, exc: wire.FrameError) -> None:
    log.warning("refused frame from %s (client %s): %s: %s", peer, client, exc.code, exc.message)


def _error(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message, "field": field}}


# -- the rpyc face --------------------------------------------------------------------


class DaemonService(rpyc.Service):
    """Exactly one reachable attribute: ``exchange(frame: bytes) -> bytes``.

    The server hands each connection's ``Guest`` in as rpyc's ``credentials``: the
    first frame that passes the gate authenticates the connection in ``admission``.
    """

    def __init__(self, gate: Gate, admission: Admission) -> None:
        self._gate = gate
        self._admission = admission
        self._peer = "?"

    def on_connect(self, conn: rpyc.Connection) -> None:
        host, port = conn._config["endpoints"][1][:2]
        self._peer = f"{host}:{port}"
        self._admitted = partial(self._admission.authenticated, conn._config["credentials"])

    def exposed_exchange(self, frame: object) -> bytes:
        return self._gate.exchange(frame, self._peer, self._admitted)

    def _rpyc_getattr(self, name: str) -> Any:
        if name == "exchange":
            return self.exposed_exchange
        raise AttributeError("access denied")
