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
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, Protocol

import rpyc
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from omserver import wire
from omserver.replay import ReplayCache

log = logging.getLogger("omserver.service")

VERSION = version("omserver")


class OperationError(Exception):
    """A handler's refusal the client should see: ``code``, message, offending ``field``.

    Codes the client maps to typed errors: ``invalid_request``, ``invalid_params``,
    ``unknown_module``, ``unknown_job``, ``unavailable``.
    """

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class Handler(Protocol):
    """What runs the operations (``omserver.engine`` implements it).

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
        wait: float,
    ) -> dict[str, Any]:
        """Submit, then ``wait`` up to ``wait`` seconds; the state (it may still run)."""


# -- operations and their arguments ---------------------------------------------------


@dataclass(frozen=True)
class Arg:
    kind: str  # a key of _CHECKS, worded for the error message
    required: bool = True
    default: Callable[[], Any] = lambda: None  # a fresh value per request


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "an integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "a number": lambda v: (
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ),
    "a string": lambda v: isinstance(v, str),
    "a list": lambda v: isinstance(v, list),
    "an object": lambda v: isinstance(v, dict),
}

_SUBMIT = {
    "module": Arg("an integer"),
    "targets": Arg("a list"),
    "params": Arg("an object", required=False, default=dict),
    "timeout": Arg("a number", required=False),
    "requested_by": Arg("a string", required=False),
    "rollout": Arg("an object", required=False),
    "job": Arg("an integer", required=False),  # run this daemon's part of a web job
}

OPERATIONS: dict[str, dict[str, Arg]] = {
    "ping": {},
    "modules": {},
    "submit": _SUBMIT,
    "run": {**_SUBMIT, "wait": Arg("a number")},
    "job": {"job_id": Arg("an integer"), "cursor": Arg("an integer", required=False, default=int)},
    "wait": {"job_id": Arg("an integer"), "timeout": Arg("a number")},
    "cancel": {"job_id": Arg("an integer")},
}


def _arguments(op: str, body: dict[str, Any]) -> dict[str, Any]:
    spec = OPERATIONS[op]
    unknown = body.keys() - spec.keys()
    if unknown:
        name = min(unknown)[:40]
        raise OperationError("invalid_request", f"{op}: unknown argument {name!r}", name)
    args = {}
    for name, arg in spec.items():
        value = body.get(name)
        if value is None:
            if arg.required:
                raise OperationError("invalid_request", f"{op}: {name} is required", name)
            value = arg.default()
        elif not _CHECKS[arg.kind](value):
            raise OperationError("invalid_request", f"{op}: {name} must be {arg.kind}", name)
        args[name] = value
    return args


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

    def exchange(self, frame: object, peer: str) -> bytes:
        """Answer one frame; never raises."""
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
        payload = self._answer(sealed, plain, peer)
        try:
            return wire.seal_answer(client, cipher, sealed.nonce, payload)
        except (TypeError, ValueError):
            log.exception("the answer to %s is not JSON", client)
            return wire.seal_answer(client, cipher, sealed.nonce, _error("internal", _INTERNAL))

    def _answer(self, sealed: wire.Sealed, plain: bytes, peer: str) -> dict[str, Any]:
        client = sealed.client
        try:
            request = wire.parse_request(sealed, plain)
            self.replay.admit(client, sealed.nonce, request.ts, self.clock())
            if request.op not in OPERATIONS:
                raise wire.FrameError("unknown_operation", f"no operation {request.op[:40]!r}")
        except wire.FrameError as exc:
            _refused(peer, client, exc)
            return _error(exc.code, exc.message)
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
        args = _arguments(request.op, request.body)
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
    """Exactly one reachable attribute: ``exchange(frame: bytes) -> bytes``."""

    def __init__(self, gate: Gate) -> None:
        self._gate = gate
        self._peer = "?"

    def on_connect(self, conn: rpyc.Connection) -> None:
        host, port = conn._config["endpoints"][1][:2]
        self._peer = f"{host}:{port}"

    def exposed_exchange(self, frame: object) -> bytes:
        return self._gate.exchange(frame, self._peer)

    def _rpyc_getattr(self, name: str) -> Any:
        if name == "exchange":
            return self.exposed_exchange
        raise AttributeError("access denied")
