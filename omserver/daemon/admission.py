"""Who may hold one of the daemon's connections, and for how long.

Anyone who reaches the port can connect before any key is checked, and each
connection holds a thread. Without these rules a few hundred idle sockets, or
packets sent a byte at a time, lock every client out. So:

* a connection must present a frame that passes the gate (a known key, fresh, not
  replayed) within ``handshake_timeout``, or it is closed;
* at most ``max_unauthenticated`` connections wait for that at once: a new one
  closes the oldest of them rather than being turned away, so a flood cannot keep
  a real client from getting in;
* one address holds at most ``max_per_address`` connections: at the cap a new one
  closes that address's oldest unauthenticated connection, else its longest idle
  one (a client reconnects transparently), and is refused only when all are busy;
* all addresses together hold at most ``max_connections``, making room the same way
  with unauthenticated connections only;
* a packet that has begun must be complete within ``frame_timeout``;
* an authenticated connection idle for ``idle_timeout`` is closed.

A connection's phase is set by its own serving thread (``WatchedChannel``, no system
call); one watchdog thread checks the deadlines and shuts overdue sockets down, which
ends the serving thread's blocking read.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from rpyc.core import SocketStream
from rpyc.lib import Timeout

from omserver.config import Config
from omserver.protocol.channel import BoundedChannel

log = logging.getLogger("omserver.admission")

WAITING = "waiting"  # for the next packet
READING = "reading"  # a packet has begun to arrive
WORKING = "working"  # answering it: as long as the operation takes (bounded by its handler)

TICK_MIN, TICK_MAX = 0.05, 1.0  # seconds between the watchdog's rounds


@dataclass(frozen=True)
class Limits:
    max_connections: int
    max_per_address: int
    max_unauthenticated: int
    handshake_timeout: float
    frame_timeout: float
    idle_timeout: float

    @classmethod
    def from_config(cls, config: Config) -> Limits:
        return cls(
            max_connections=config["daemon.max_connections"],
            max_per_address=config["daemon.max_connections_per_address"],
            max_unauthenticated=config["daemon.max_unauthenticated"],
            handshake_timeout=config["daemon.handshake_timeout"],
            frame_timeout=config["daemon.frame_timeout"],
            idle_timeout=config["daemon.idle_timeout"],
        )

    @property
    def tick(self) -> float:
        """How often the watchdog looks: a deadline is kept to within about a quarter."""
        shortest = min(self.handshake_timeout, self.frame_timeout, self.idle_timeout)
        return min(max(shortest / 4, TICK_MIN), TICK_MAX)


@dataclass(eq=False)  # one per connection, hashed by identity
class Guest:
    """One connection: where from, since when, in which phase, and as which client."""

    sock: socket.socket
    address: str
    peer: str
    accepted: float
    # (phase, monotonic time it began), replaced whole so the watchdog reads a pair
    state: tuple[str, float] = field(default=(WAITING, 0.0))
    client: str | None = None  # set once a frame passed the gate

    def __post_init__(self) -> None:
        self.state = (WAITING, self.accepted)

    def idle_since(self) -> float | None:
        phase, since = self.state
        return since if phase == WAITING and self.client is not None else None


class Admission:
    """The connections being served, the caps on them and their deadlines."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._guests: dict[Guest, None] = {}  # dicts keep order: oldest first
        self._unauthenticated: dict[Guest, None] = {}
        self._by_address: dict[str, dict[Guest, None]] = {}

    def admit(self, sock: socket.socket) -> Guest | None:
        """The new connection's guest, after closing others to make room if a cap is
        reached; ``None`` when there is no room (the caller closes ``sock``)."""
        try:
            host, port = sock.getpeername()[:2]
        except OSError:  # gone already
            return None
        limits = self.limits
        with self._lock:
            same = self._by_address.get(host, {})
            if len(same) >= limits.max_per_address:
                victim = self._oldest_unauthenticated(same) or self._longest_idle(same)
                if victim is None:
                    return self._refused(host, port, "daemon.max_connections_per_address")
                self._close(victim, "to make room for another from its address")
            if len(self._guests) >= limits.max_connections:
                victim = next(iter(self._unauthenticated), None)
                if victim is None:
                    return self._refused(host, port, "daemon.max_connections")
                self._close(victim, "to make room (daemon.max_connections)")
            if len(self._unauthenticated) >= limits.max_unauthenticated:
                victim = next(iter(self._unauthenticated))
                self._close(victim, "still without a valid frame (daemon.max_unauthenticated)")
            guest = Guest(sock, host, f"{host}:{port}", time.monotonic())
            self._guests[guest] = None
            self._unauthenticated[guest] = None
            self._by_address.setdefault(host, {})[guest] = None
        return guest

    def authenticated(self, guest: Guest, client: str) -> None:
        """A frame from ``client`` passed the gate on this connection."""
        if guest.client is not None:  # every request after the first: no lock
            return
        with self._lock:
            guest.client = client
            self._unauthenticated.pop(guest, None)

    def leave(self, guest: Guest) -> None:
        """The serving thread is done with this connection (before it closes the socket)."""
        with self._lock:
            self._forget(guest)

    def overdue(self, now: float) -> list[tuple[Guest, str]]:
        """The connections past a deadline at ``now``, each with why."""
        limits = self.limits
        found = []
        for guest in list(self._guests):
            phase, since = guest.state
            if guest.client is None and now - guest.accepted > limits.handshake_timeout:
                why = f"no valid frame within {limits.handshake_timeout:g} s"
                found.append((guest, why + " (daemon.handshake_timeout)"))
            elif phase == READING and now - since > limits.frame_timeout:
                why = f"a packet not complete within {limits.frame_timeout:g} s"
                found.append((guest, why + " (daemon.frame_timeout)"))
            elif phase == WAITING and guest.client and now - since > limits.idle_timeout:
                why = f"idle for {limits.idle_timeout:g} s (daemon.idle_timeout)"
                found.append((guest, why))
        return found

    def sweep(self) -> None:
        """Close every overdue connection."""
        with self._lock:
            for guest, why in self.overdue(time.monotonic()):
                self._close(guest, why)

    def watch(self, stop: threading.Event) -> None:
        """The watchdog: sweep every ``limits.tick`` seconds until ``stop`` is set."""
        while not stop.wait(self.limits.tick):
            try:
                self.sweep()
            except Exception:  # the watchdog must outlive any surprise
                log.exception("the connection watchdog failed a round")

    # -- under the lock -----------------------------------------------------------------

    @staticmethod
    def _oldest_unauthenticated(guests: dict[Guest, None]) -> Guest | None:
        return next((guest for guest in guests if guest.client is None), None)

    @staticmethod
    def _longest_idle(guests: dict[Guest, None]) -> Guest | None:
        idle = [(since, guest) for guest in guests if (since := guest.idle_since()) is not None]
        return min(idle, key=lambda pair: pair[0])[1] if idle else None

    def _forget(self, guest: Guest) -> bool:
        if self._guests.pop(guest, False) is False:
            return False
        self._unauthenticated.pop(guest, None)
        same = self._by_address[guest.address]
        del same[guest]
        if not same:
            del self._by_address[guest.address]
        return True

    def _close(self, guest: Guest, why: str) -> None:
        """Shut the socket down: its serving thread's read ends and the thread closes it.
        Only a guest still registered: its socket is not closed yet, so never reused."""
        if not self._forget(guest):
            return
        level = logging.INFO if guest.client else logging.WARNING
        who = f" (client {guest.client})" if guest.client else ""
        log.log(level, "closed the connection from %s%s: %s", guest.peer, who, why)
        with contextlib.suppress(OSError):
            guest.sock.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _refused(host: str, port: int, setting: str) -> None:
        log.warning("refused a connection from %s:%s: no room (%s)", host, port, setting)


class WatchedChannel(BoundedChannel):
    """The daemon's channel: tells its guest's phase as packets come, at no cost in
    system calls (a clock read per phase), and with one fewer per request than rpyc's:
    the daemon's sockets block, so it waits for a packet in ``recv`` itself rather than
    in a ``poll(2)`` first."""

    __slots__ = ("guest",)

    def __init__(self, stream: SocketStream, limit: int, guest: Guest) -> None:
        super().__init__(stream, limit, guest.peer)
        self.guest = guest

    def poll(self, timeout: Any) -> bool:
        if Timeout(timeout).finite:  # rpyc's goodbye handshake: keep its bound
            return super().poll(timeout)
        return True  # serving: ``recv`` waits as long, and sees the end as well

    def recv(self) -> bytes:
        data = super().recv()
        self.guest.state = (WORKING, 0.0)
        return data

    def _header(self) -> bytes:
        guest, size = self.guest, self.FRAME_HEADER.size
        guest.state = (WAITING, time.monotonic())
        try:
            begun = self.stream.sock.recv(size)  # blocks until a packet begins
        except OSError as exc:
            self.stream.close()
            raise EOFError(exc) from exc
        if not begun:
            self.stream.close()
            raise EOFError("connection closed by peer")
        guest.state = (READING, time.monotonic())
        return begun if len(begun) == size else begun + self.stream.read(size - len(begun))
