"""The daemon's connections against a hostile network: idle, half-sent and too many
connections cannot lock a client out, and a too-deep request gets a clear answer.

Each test starts its own ``python -m omserver serve`` (Ansible's local connection, so
a job needs no lab) with small deadlines, and waits on what it expects with deadlines
far longer than those, so a busy machine only makes it slower.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import rpyc
from rpyc.core import SocketStream

from omserver.client import Client, InvalidRequest
from omserver.protocol import wire
from tests.conftest import WWW_HOSTS
from tests.daemon_process import RunningDaemon, running_daemon
from tests.lab.fixtures import modules_folder
from tests.lab.procs import wait_for
from tests.test_daemon_protocol import seal_plaintext
from tests.test_web_faults import LOCAL

pytestmark = pytest.mark.usefixtures("transactional_db", "inventory")
HOST = WWW_HOSTS[0]
PATIENCE = 60.0  # seconds any expected close may take on a busy machine


@contextmanager
def daemon_with(tmp_path: Path, database_url: str, **settings: object) -> Iterator[RunningDaemon]:
    """A local daemon with ``daemon.<name>`` settings, e.g. ``idle_timeout=1``."""
    env = {
        **LOCAL,
        "OMSERVER_DAEMON_MODULES_DIR": str(modules_folder(tmp_path)),
        **{f"OMSERVER_DAEMON_{name.upper()}": str(value) for name, value in settings.items()},
    }
    with running_daemon(tmp_path / "var", env, database_url=database_url) as daemon:
        yield daemon


def connect(daemon: RunningDaemon, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(wire.parse_address(daemon.address), source_address=(source, 0))
    sock.settimeout(PATIENCE)
    return sock


def hung_up(sock: socket.socket) -> bool:
    """The daemon closed ``sock`` (waits up to its timeout for that)."""
    try:
        while data := sock.recv(65536):  # at most rpyc's goodbye before the end
            del data
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def still_open(sock: socket.socket) -> bool:
    """Not closed by the daemon (what may wait to be read is a late rpyc reply)."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.settimeout(PATIENCE)


class Session:
    """An rpyc connection of our own, over a socket the test can still write to."""

    def __init__(self, daemon: RunningDaemon, client: str = "web", source: str = "127.0.0.1"):
        self.sock = connect(daemon, source)
        self.conn = rpyc.connect_stream(SocketStream(self.sock))
        self.client = client
        self.cipher = wire.cipher(wire.decode_key(daemon.issued[client]))

    def ask(self, op: str, body: dict | None = None) -> dict:
        frame, nonce = wire.seal_request(self.client, self.cipher, op, body or {}, now=time.time())
        return self.exchange(frame, nonce)

    def exchange(self, frame: bytes, nonce: bytes) -> dict:
        return wire.open_answer(self.conn.root.exchange(frame), self.client, self.cipher, nonce)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()
        self.sock.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def test_300_idle_and_50_slow_connections_leave_a_client_its_ping_and_its_job(
    tmp_path: Path, test_database_url: str
) -> None:
    """Without a key, the flood fills at most ``max_unauthenticated`` slots: each new
    connection closes the oldest that has not yet sent a valid frame. The handshake
    deadline is long here, so it is that rule, not the deadline, that lets the client in."""
    with daemon_with(tmp_path, test_database_url, handshake_timeout=120) as daemon:
        idle = [connect(daemon) for _ in range(300)]
        slow = [connect(daemon) for _ in range(50)]
        stop = threading.Event()

        def dribble() -> None:  # a packet announced, then one byte a socket at a time
            packet = struct.pack("!LB", 1000, 0) + bytes(1000)
            for position in range(len(packet)):
                for sock in slow:
                    with contextlib.suppress(OSError):
                        sock.send(packet[position : position + 1])
                if stop.wait(0.2):
                    return

        sender = threading.Thread(target=dribble)
        sender.start()
        try:
            with daemon.client("ops") as client:
                assert client.ping()["version"]
                state = client.run(1003, [HOST], timeout=120, check=False)
                assert state["status"] == "succeeded", state
                assert sender.is_alive()  # the slow senders were at it all along
        finally:
            stop.set()
            sender.join()
            for sock in idle + slow:
                sock.close()
        assert "(daemon.max_unauthenticated)" in daemon.log()


def test_a_connection_without_a_valid_frame_is_closed_at_the_handshake_deadline(
    tmp_path: Path, test_database_url: str
) -> None:
    with daemon_with(tmp_path, test_database_url, handshake_timeout=1) as daemon, ExitStack() as s:
        silent, refused = s.enter_context(connect(daemon)), s.enter_context(Session(daemon))
        stranger = wire.cipher(os.urandom(32))
        frame, _ = wire.seal_request("web", stranger, "ping", {}, now=time.time())
        assert refused.conn.root.exchange(frame) == wire.refusal()  # a frame, but no key
        assert hung_up(silent) and hung_up(refused.sock)
        assert daemon.log().count("no valid frame within 1 s (daemon.handshake_timeout)") == 2
        with daemon.client() as client:
            assert client.ping()


def test_a_packet_still_arriving_at_the_frame_deadline_is_cut(
    tmp_path: Path, test_database_url: str
) -> None:
    """Even on a connection that has a key: only the frame deadline can close it here."""
    settings = {"frame_timeout": 1, "handshake_timeout": 120}
    with daemon_with(tmp_path, test_database_url, **settings) as daemon, Session(daemon) as session:
        assert session.ask("ping")["ok"] is True
        session.sock.sendall(struct.pack("!LB", 1000, 0) + bytes(10))  # 990 bytes short
        assert hung_up(session.sock)
        assert "a packet not complete within 1 s (daemon.frame_timeout)" in daemon.log()


def test_an_idle_client_connection_is_closed_and_the_next_call_reconnects(
    tmp_path: Path, test_database_url: str
) -> None:
    with (
        daemon_with(tmp_path, test_database_url, idle_timeout=2) as daemon,
        daemon.client() as client,
    ):
        # A call that takes longer than the idle deadline is not idle: it is not cut.
        job_id = client.submit(9101, [HOST], {"seconds": 4}, timeout=120)
        assert client.wait(job_id, timeout=120)["status"] == "succeeded"
        first = client._local.link  # the thread's kept connection
        wait_for(lambda: "idle for 2 s (daemon.idle_timeout)" in daemon.log(), PATIENCE, "idle")
        wait_for(first.hung_up, PATIENCE, "the client to see the connection closed")
        assert daemon.log().count("(daemon.idle_timeout)") == 1  # not the wait's, earlier
        sent_on = []  # the connection each frame goes out on (None: a new one)
        exchange = client._exchange
        client._exchange = lambda frame, link: sent_on.append(link) or exchange(frame, link)
        assert client.ping()["version"]
        assert sent_on == [None]  # never into the closed one: no frame was lost or sent twice
        assert first.conn.closed


def test_one_address_holds_at_most_its_cap_and_others_are_not_affected(
    tmp_path: Path, test_database_url: str
) -> None:
    """At the cap a new connection closes its address's oldest unauthenticated one, else
    its longest idle one (refusing it when all are busy is a unit test's: a busy phase
    cannot be seen from here). 127.0.0.2 is the address at its cap."""
    settings = {"max_connections_per_address": 3, "handshake_timeout": 120}
    with daemon_with(tmp_path, test_database_url, **settings) as daemon, ExitStack() as stack:
        flood = [stack.enter_context(connect(daemon, "127.0.0.2")) for _ in range(4)]
        assert hung_up(flood[0])  # the oldest made room for the fourth
        assert all(still_open(sock) for sock in flood[1:])

        sessions = [stack.enter_context(Session(daemon, source="127.0.0.2")) for _ in range(3)]
        for session in sessions:  # each authenticates, having closed one of the flood
            assert session.ask("ping")["ok"] is True
        assert all(hung_up(sock) for sock in flood[1:])
        newcomer = stack.enter_context(Session(daemon, source="127.0.0.2"))
        assert newcomer.ask("ping")["ok"] is True
        assert hung_up(sessions[0].sock)  # the longest idle made room
        assert all(still_open(session.sock) for session in sessions[1:])
        with daemon.client() as neighbour:  # from 127.0.0.1
            assert neighbour.ping()


def test_connections_beyond_the_global_cap_make_room_only_from_the_unauthenticated(
    tmp_path: Path, test_database_url: str
) -> None:
    settings = {"max_connections": 2, "handshake_timeout": 120, "log_level": "debug"}
    with daemon_with(tmp_path, test_database_url, **settings) as daemon, ExitStack() as stack:

        def served() -> int:
            log = daemon.log()
            return log.count("serving the connection from") - log.count("done with the connection")

        wait_for(lambda: served() == 0, PATIENCE, "the start-up probe's connection to end")
        waiting = stack.enter_context(connect(daemon))
        held = [stack.enter_context(Session(daemon))]
        assert held[0].ask("ping")["ok"] is True
        held.append(stack.enter_context(Session(daemon)))  # closes the one without a key
        assert hung_up(waiting)
        assert held[1].ask("ping")["ok"] is True  # two with a key fill the cap
        extra = stack.enter_context(connect(daemon))
        assert hung_up(extra)  # no room, and nobody it may close
        assert "no room (daemon.max_connections)" in daemon.log()
        held.pop().close()
        with daemon.client() as client:
            wait_for(lambda: _pings(client), PATIENCE, "a free connection slot")


def _pings(client: Client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_a_deeply_nested_request_gets_a_clear_error_answer(
    tmp_path: Path, test_database_url: str
) -> None:
    with daemon_with(tmp_path, test_database_url) as daemon, Session(daemon) as session:
        for depth in (100, 1000, 100_000):  # the last two beyond what json can decode
            deep = b"[" * depth + b"]" * depth
            target = b'{"hostname":"%s"}' % HOST.encode()
            body = b'{"module":1003,"targets":[%s],"params":{"a":%s}}' % (target, deep)
            template = b'{"client":"web","ts":TS,"nonce":"NONCE","op":"submit","body":%s}' % body
            answer = session.exchange(*seal_plaintext("web", session.cipher, template))
            assert answer["error"]["code"] == "invalid_request", depth
            assert "deeper than 64 levels" in answer["error"]["message"]
            assert session.ask("ping")["ok"] is True  # the same connection goes on
            with daemon.client() as client, pytest.raises(InvalidRequest, match="deeper than 64"):
                client.submit(1003, [HOST], {"a": nested(depth)})
