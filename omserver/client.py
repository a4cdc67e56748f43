"""The Python client of the master-control daemon: one method per operation.

Every failure is a ``DaemonError``; its subclasses say what to do about it::

    DaemonError
    ├── ClientConfigError    bad address, client id or key given to Client()
    ├── DaemonUnreachable    no connection, or it broke / timed out
    ├── FrameRefused         the daemon would not act on the frame (code says why)
    ├── BadAnswer            an answer that fails authentication: not our daemon
    ├── RequestRejected      understood and refused (code, field)
    │   ├── InvalidRequest   ├── InvalidParameters
    │   ├── UnknownModule    ├── UnknownJob    └── Unavailable
    ├── DaemonInternalError  the daemon failed on the request (see its log)
    └── JobFailed            the job ended but not "succeeded" (``state`` attached)
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import rpyc
from rpyc.core import SocketStream
from rpyc.utils.factory import connect_channel

from omserver.protocol import wire
from omserver.protocol.channel import PROTOCOL_CONFIG, BoundedChannel
from omserver.vocabulary import FINAL_STATUSES, JobStatus

WAIT_SLICE = 20.0  # the longest single wait asked of the daemon; longer waits loop
ANSWER_LIMIT = 1 << 30  # refuse a (compressed) packet bigger than this from the daemon
RETRY_SAFE = frozenset({"ping", "modules", "job", "wait", "cancel"})


class DaemonError(Exception):
    """Anything that kept an operation from giving its result."""

    def __init__(self, message: str, code: str = "", field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


class ClientConfigError(DaemonError, ValueError):
    pass


class DaemonUnreachable(DaemonError):  # noqa: N818 (names say what happened)
    pass


class FrameRefused(DaemonError):  # noqa: N818 (names say what happened)
    """Codes: refused (not authenticated), stale, replayed, malformed, unknown_operation."""


class BadAnswer(DaemonError):  # noqa: N818 (names say what happened)
    pass


class RequestRejected(DaemonError):  # noqa: N818 (names say what happened)
    pass


class InvalidRequest(RequestRejected):
    pass


class InvalidParameters(InvalidRequest):
    """``field`` names the module parameter."""


class UnknownModule(RequestRejected):
    pass


class UnknownJob(RequestRejected):
    pass


class Unavailable(RequestRejected):
    pass


class DaemonInternalError(DaemonError):
    pass


class JobFailed(DaemonError):  # noqa: N818 (names say what happened)
    def __init__(self, state: dict[str, Any]) -> None:
        message = f"job {state.get('id')} ended {state.get('status')}"
        if state.get("error"):
            message += f": {state['error']}"
        super().__init__(message, state.get("status", ""))
        self.state = state


_BY_CODE: dict[str, type[DaemonError]] = {
    "stale": FrameRefused,
    "replayed": FrameRefused,
    "malformed": FrameRefused,
    "unknown_operation": FrameRefused,
    "invalid_request": InvalidRequest,
    "invalid_params": InvalidParameters,
    "unknown_module": UnknownModule,
    "unknown_job": UnknownJob,
    "unavailable": Unavailable,
    "internal": DaemonInternalError,
}


@dataclass(eq=False)  # hashed by identity: hashing a netref would ask the daemon
class _Link:
    """One thread's connection to the daemon and its remote ``exchange``."""

    conn: rpyc.Connection
    channel: BoundedChannel
    exchange: Any = None

    def close(self) -> None:
        self.channel.close()  # first, so rpyc's goodbye cannot wait on a hung daemon
        with contextlib.suppress(Exception):
            self.conn.close()


def _target(target: str | Mapping[str, Any]) -> dict[str, Any]:
    return {"hostname": target} if isinstance(target, str) else dict(target)


class Client:
    """Talks to one daemon as one client id; safe to share between threads.

    Each thread gets its own connection (the daemon serves a connection's
    requests one at a time, so a long ``wait`` must not hold up the others).
    """

    def __init__(
        self, address: str, client_id: str, key: str | bytes, *, timeout: float = 30.0
    ) -> None:
        try:
            self.host, self.port = wire.parse_address(address)
            self._cipher = wire.cipher(wire.decode_key(key))
        except ValueError as exc:
            raise ClientConfigError(str(exc)) from exc
        if not wire.valid_client_id(client_id):
            raise ClientConfigError(f"bad client id {client_id!r}")
        self.address = address
        self.client_id = client_id
        self.timeout = timeout
        self._local = threading.local()  # .link: this thread's connection
        self._links: set[_Link] = set()
        self._lock = threading.Lock()

    # -- operations ---------------------------------------------------------------------

    def ping(self) -> dict[str, Any]:
        """``{"version", "backend", "modules"}``: the daemon is up and accepts our key."""
        return self._call("ping")

    def modules(self) -> dict[str, Any]:
        """``{"modules": [metadata…], "errors": {path: message}}``."""
        return self._call("modules")

    def submit(
        self,
        module_id: int,
        targets: Sequence[str | Mapping[str, Any]],
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        requested_by: str | None = None,
        rollout: Mapping[str, Any] | None = None,
        job: int | None = None,
    ) -> int:
        """Queue a job; returns its id at once. Targets are host names or target dicts.

        ``job`` names a job the web created across zones: the daemon runs its part of it.
        """
        request = self._job_request(module_id, targets, params, timeout, requested_by, rollout)
        return self._call("submit", **request, **({"job": job} if job is not None else {}))

    def job(self, job_id: int, cursor: int = 0) -> dict[str, Any]:
        """Status, and the hosts, steps and live output recorded after ``cursor`` (the
        last state's ``cursor``; ``more`` says the answer holds one page of them)."""
        return self._call("job", job_id=job_id, cursor=cursor)

    def wait(
        self, job_id: int, timeout: float | None = None, *, check: bool = True
    ) -> dict[str, Any]:
        """The state once the job ended (``JobFailed`` unless it succeeded, if ``check``),
        or after ``timeout`` seconds, whatever it is then."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self._call("wait", job_id=job_id, timeout=self._slice(deadline))
            if state["status"] in FINAL_STATUSES or self._slice(deadline) == 0:
                return self._checked(state, check)

    def cancel(self, job_id: int) -> dict[str, Any]:
        return self._call("cancel", job_id=job_id)

    def run(
        self,
        module_id: int,
        targets: Sequence[str | Mapping[str, Any]],
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        requested_by: str | None = None,
        rollout: Mapping[str, Any] | None = None,
        check: bool = True,
    ) -> dict[str, Any]:
        """Submit and wait for the end (the job's own ``timeout`` bounds the wait)."""
        request = self._job_request(module_id, targets, params, timeout, requested_by, rollout)
        state = self._call("run", **request, wait=self._slice(None))
        if state["status"] not in FINAL_STATUSES:
            state = self.wait(state["id"], check=False)
        return self._checked(state, check)

    def follow(self, job_id: int, *, poll: float = 0.25) -> Iterator[dict[str, Any]]:
        """Each new state of the job, holding only the hosts, steps and output not yet
        seen; ends at the end."""
        cursor = 0
        while True:
            state = self.job(job_id, cursor)
            cursor = state["cursor"]
            yield state
            if state["more"]:
                continue
            if state["status"] in FINAL_STATUSES:
                return
            time.sleep(poll)

    # -- plumbing -----------------------------------------------------------------------

    @staticmethod
    def _job_request(module_id, targets, params, timeout, requested_by, rollout) -> dict[str, Any]:
        request = {
            "module": module_id,
            "targets": [_target(t) for t in targets],
            "params": dict(params or {}),
            "timeout": timeout,
            "requested_by": requested_by,
            "rollout": dict(rollout) if rollout else None,
        }
        return {name: value for name, value in request.items() if value is not None}

    def _slice(self, deadline: float | None) -> float:
        """One wait asked of the daemon: it must answer before our socket times out."""
        longest = min(WAIT_SLICE, self.timeout * 0.8)
        if deadline is None:
            return longest
        return max(0.0, min(longest, deadline - time.monotonic()))

    @staticmethod
    def _checked(state: dict[str, Any], check: bool) -> dict[str, Any]:
        if check and state["status"] in FINAL_STATUSES and state["status"] != JobStatus.SUCCEEDED:
            raise JobFailed(state)
        return state

    def _call(self, op: str, **body: Any) -> Any:
        link = self._live_link()
        frame, nonce = self._seal(op, body)
        try:
            answer = self._exchange(frame, link)
        except DaemonUnreachable:
            if link is None or op not in RETRY_SAFE:
                raise
            # The kept connection may predate a daemon restart: one fresh try.
            frame, nonce = self._seal(op, body)
            answer = self._exchange(frame, None)
        try:
            payload = wire.open_answer(answer, self.client_id, self._cipher, nonce)
        except wire.FrameError as exc:
            kind = FrameRefused if exc.code == "refused" else BadAnswer
            raise kind(f"{op}: {exc.message}", exc.code) from None
        if not isinstance(payload, dict) or not isinstance(payload.get("ok"), bool):
            raise BadAnswer(f"{op}: the answer has no ok field", "bad_answer")
        if payload["ok"]:
            return payload.get("result")
        error = payload.get("error") if isinstance(payload.get("error"), dict) else {}
        code = str(error.get("code", ""))
        raise _BY_CODE.get(code, DaemonError)(
            f"{op}: {error.get('message', code)}", code, error.get("field")
        )

    def _seal(self, op: str, body: dict[str, Any]) -> tuple[bytes, bytes]:
        return wire.seal_request(self.client_id, self._cipher, op, body, now=time.time())

    def _live_link(self) -> _Link | None:
        link = getattr(self._local, "link", None)
        return link if link is not None and not link.conn.closed else None

    def _exchange(self, frame: bytes, link: _Link | None) -> bytes:
        try:
            answer = (link or self._connect()).exchange(frame)
        except (OSError, EOFError) as exc:  # includes socket timeouts and rpyc's
            self._drop()
            raise DaemonUnreachable(
                f"daemon at {self.address}: {exc or type(exc).__name__}", "unreachable"
            ) from exc
        except Exception as exc:  # an rpyc peer that is not an OMServer daemon
            self._drop()
            raise BadAnswer(f"daemon at {self.address}: {exc!r}", "bad_answer") from exc
        if type(answer) is not bytes:
            self._drop()
            raise BadAnswer(f"daemon at {self.address} answered a {type(answer).__name__}")
        return answer

    def _connect(self) -> _Link:
        # Not SocketStream.connect: it leaks the socket when the connection is refused.
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        channel = BoundedChannel(SocketStream(sock), ANSWER_LIMIT, self.address)
        conn = connect_channel(
            channel, config={**PROTOCOL_CONFIG, "sync_request_timeout": self.timeout}
        )
        self._local.link = link = _Link(conn, channel)  # so _drop closes it if the next fails
        link.exchange = conn.root.exchange
        with self._lock:
            self._links.add(link)
        return link

    def _drop(self) -> None:
        link = getattr(self._local, "link", None)
        self._local.link = None
        if link is not None:
            with self._lock:
                self._links.discard(link)
            link.close()

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            links, self._links = self._links, set()
        for link in links:
            link.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
