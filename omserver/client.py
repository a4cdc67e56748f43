"""The Python client of the master-control daemon: one method per operation.

Every failure is a ``DaemonError``; its subclasses say what to do about it::

    DaemonError
    ├── ClientConfigError    bad address, client id or key given to Client()
    ├── DaemonUnreachable    no connection, or it broke / timed out
    ├── FrameRefused         the daemon would not act on the frame (code says why)
    ├── BadAnswer            an answer that fails authentication: not our daemon
    ├── RequestRejected      understood and refused (code, field)
    │   ├── InvalidRequest   ├── InvalidParameters
    │   ├── UnknownModule    ├── UnknownJob    ├── Unavailable
    │   └── NotPermitted     outside the key's scope (``omserver keys scope``)
    ├── DaemonInternalError  the daemon failed on the request (see its log)
    └── JobFailed            the job ended but not "succeeded" (``state`` attached)
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import rpyc
from rpyc.core import SocketStream
from rpyc.utils.factory import connect_channel

from omserver.protocol import wire
from omserver.protocol.channel import PROTOCOL_CONFIG, BoundedChannel
from omserver.protocol.limits import too_deep
from omserver.vocabulary import FINAL_STATUSES, JobStatus

WAIT_SLICE = 20.0  # the longest single wait asked of the daemon; longer waits loop
ANSWER_LIMIT = 1 << 30  # refuse a (compressed) packet bigger than this from the daemon
# Operations that may be sent again when the connection broke before the answer came:
# reads, a cancel, and a submit or run that carries its request id (the daemon answers
# a repeated id with the job it made the first time).
RETRY_SAFE = frozenset({"ping", "modules", "job", "wait", "cancel", "submit", "run"})
# A daemon that refuses connections may be restarting: these are tried again, with a
# growing pause, for the client's ``retry_for`` seconds. ``ping`` says how it is now.
RETRY_WHILE_REFUSED = RETRY_SAFE - {"ping"}
RETRY_PAUSES = (0.05, 0.1, 0.2, 0.4, 0.8)  # then the last, again and again
RETRY_FOR = 3.0  # seconds, by default
# The daemon closes a connection idle for its daemon.idle_timeout (minutes by default).
# A kept connection unused for this long is checked before a request goes out on it, so
# a request is never sent into a connection the daemon has closed; one closed sooner
# (the daemon restarting) is found by the retry in ``Client._send``.
CHECK_LINK_AFTER = 1.0  # seconds
_T = TypeVar("_T")


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


class NotPermitted(RequestRejected):
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


# What a follower waits out: the daemon restarting, its database away.
OUTAGE_ERRORS = (DaemonUnreachable, Unavailable)

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
    "not_permitted": NotPermitted,
    "internal": DaemonInternalError,
}


@dataclass(eq=False)  # hashed by identity: hashing a netref would ask the daemon
class _Link:
    """One thread's connection to the daemon and its remote ``exchange``."""

    conn: rpyc.Connection
    channel: BoundedChannel
    exchange: Any = None
    used: float = 0.0  # monotonic time of its last answer

    def hung_up(self) -> bool:
        """The daemon closed it: the daemon never speaks first, so anything to read on an
        idle connection is its end (or rpyc's goodbye before it)."""
        try:
            return bool(self.channel.poll(0))
        except (OSError, EOFError, ValueError):
            return True

    def close(self) -> None:
        self.channel.close()  # first, so rpyc's goodbye cannot wait on a hung daemon
        with contextlib.suppress(Exception):
            self.conn.close()


def patiently(
    read: Callable[[], _T],
    patience: float,
    on_outage: Callable[[DaemonError | None], None] | None = None,
) -> _T:
    """``read()``, asked again through an outage (``OUTAGE_ERRORS``) of up to ``patience``
    seconds, with a growing pause; ``on_outage`` hears the error when one begins and
    ``None`` when ``read`` works again. Only for what is safe to ask twice."""
    began = None
    for attempt in itertools.count():
        try:
            result = read()
        except OUTAGE_ERRORS as exc:
            now = time.monotonic()
            if began is None:
                began = now
                if on_outage and patience > 0:
                    on_outage(exc)
            if now - began >= patience:
                raise
            time.sleep(min(0.25 * 2 ** min(attempt, 5), 5.0, patience - (now - began)))
            continue
        if began is not None and on_outage:
            on_outage(None)
        return result
    raise AssertionError("itertools.count() ended")


def new_request_id() -> str:
    """A submission's own id, for the daemon to know a retry of it."""
    return uuid.uuid4().hex


def _target(target: str | Mapping[str, Any]) -> dict[str, Any]:
    return {"hostname": target} if isinstance(target, str) else dict(target)


class Client:
    """Talks to one daemon as one client id; safe to share between threads.

    Each thread gets its own connection (the daemon serves a connection's
    requests one at a time, so a long ``wait`` must not hold up the others).
    A kept connection that broke (the daemon restarted) is replaced at once and
    the request sent again when that is safe; a refused connection is tried
    again for ``retry_for`` seconds (at most ``timeout``).
    """

    def __init__(
        self,
        address: str,
        client_id: str,
        key: str | bytes,
        *,
        timeout: float = 30.0,
        retry_for: float = RETRY_FOR,
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
        self.retry_for = min(retry_for, timeout)
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
        request: str | None = None,
    ) -> int:
        """Queue a job; returns its id at once. Targets are host names or target dicts.

        ``job`` names a job the web created across zones: the daemon runs its part of it.
        ``request`` identifies this submission (a fresh one by default): sent again, by a
        retry here or by the caller, it gets the same job and never runs it twice.
        """
        body = self._job_request(module_id, targets, params, timeout, requested_by, rollout)
        body["request"] = request or new_request_id()
        return self._call("submit", **body, **({"job": job} if job is not None else {}))

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
        request: str | None = None,
    ) -> dict[str, Any]:
        """Submit and wait for the end (the job's own ``timeout`` bounds the wait);
        ``request`` as for ``submit``."""
        body = self._job_request(module_id, targets, params, timeout, requested_by, rollout)
        body["request"] = request or new_request_id()
        state = self._call("run", **body, wait=self._slice(None))
        if state["status"] not in FINAL_STATUSES:
            state = self.wait(state["id"], check=False)
        return self._checked(state, check)

    def follow(
        self,
        job_id: int,
        *,
        poll: float = 0.25,
        patience: float = 0.0,
        on_outage: Callable[[DaemonError | None], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Each new state of the job, holding only the hosts, steps and output not yet
        seen; ends at the end.

        The job goes on while its daemon restarts or its database is away: for up to
        ``patience`` seconds of such an outage the same read is asked again, with a
        growing pause. ``on_outage`` hears the error when one begins and ``None``
        when the daemon answers again.
        """
        cursor = 0
        while True:
            state = patiently(partial(self.job, job_id, cursor), patience, on_outage)
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
        answer, nonce = self._send(op, body)
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

    def _send(self, op: str, body: dict[str, Any]) -> tuple[bytes, bytes]:
        """The sealed answer and the nonce it must carry.

        A kept connection that broke before the answer (it may predate a daemon
        restart) gets one fresh try at once; a refused connection more, with
        pauses, for ``retry_for`` seconds. A daemon that took the connection but did
        not answer in time is not asked again: that would double the wait.
        """
        deadline = time.monotonic() + self.retry_for
        link = self._live_link()
        pauses = iter(RETRY_PAUSES)
        while True:
            frame, nonce = self._seal(op, body)
            try:
                return self._exchange(frame, link), nonce
            except DaemonUnreachable as exc:
                if op not in RETRY_SAFE or isinstance(exc.__cause__, TimeoutError):
                    raise
                if link is not None:  # stale: straight to a fresh connection
                    link = None
                    continue
                pause = next(pauses, RETRY_PAUSES[-1])
                refused = isinstance(exc.__cause__, ConnectionRefusedError)
                if not refused or op not in RETRY_WHILE_REFUSED:
                    raise
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)

    def _seal(self, op: str, body: dict[str, Any]) -> tuple[bytes, bytes]:
        try:
            return wire.seal_request(self.client_id, self._cipher, op, body, now=time.time())
        except RecursionError:  # JSON's encoder ran out of stack: the daemon refuses far less
            raise InvalidRequest(f"{op}: {too_deep()}", "invalid_request") from None

    def _live_link(self) -> _Link | None:
        """This thread's kept connection, unless it is closed."""
        link = getattr(self._local, "link", None)
        if link is None or link.conn.closed:
            return None
        if time.monotonic() - link.used > CHECK_LINK_AFTER and link.hung_up():
            self._drop()
            return None
        return link

    def _exchange(self, frame: bytes, link: _Link | None) -> bytes:
        try:
            link = link or self._connect()
            answer = link.exchange(frame)
            link.used = time.monotonic()
        except (OSError, EOFError) as exc:  # includes socket timeouts and rpyc's
            self._drop()
            why = (
                f"no answer within {self.timeout:g} s"
                if isinstance(exc, TimeoutError)
                else exc or type(exc).__name__
            )
            raise DaemonUnreachable(f"daemon at {self.address}: {why}", "unreachable") from exc
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

    def close_thread(self) -> None:
        """Close the calling thread's connection: a thread that ends must not leave it open."""
        self._drop()

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
