"""Admission control step by step, on real loopback sockets and no daemon: who is
closed to make room, who is refused, and who is past a deadline."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace

import pytest

from omserver.daemon.admission import READING, WAITING, WORKING, Admission, Guest, Limits

LIMITS = Limits(
    max_connections=6,
    max_per_address=4,
    max_unauthenticated=10,
    handshake_timeout=5.0,
    frame_timeout=20.0,
    idle_timeout=300.0,
)


class Peers:
    """Connections to a loopback listener: the far ends, as the daemon accepts them."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.opened: list[socket.socket] = []

    def accept(self, source: str = "127.0.0.1") -> socket.socket:
        near = socket.create_connection(self.listener.getsockname(), source_address=(source, 0))
        far, _ = self.listener.accept()
        self.opened += [near, far]
        near.settimeout(5)
        return far

    def close(self) -> None:
        for sock in [*self.opened, self.listener]:
            sock.close()


@pytest.fixture
def peers() -> Iterator[Peers]:
    made = Peers()
    yield made
    made.close()


def closed(guest: Guest, peers: Peers) -> bool:
    """The admission shut this guest's socket down: its peer reads the end."""
    near = peers.opened[peers.opened.index(guest.sock) - 1]
    return near.recv(1) == b""


def admitted(admission: Admission, peers: Peers, source: str = "127.0.0.1") -> Guest:
    guest = admission.admit(peers.accept(source))
    assert guest is not None
    return guest


def test_a_flood_closes_its_own_oldest_never_an_authenticated_connection(peers):
    admission = Admission(replace(LIMITS, max_unauthenticated=3))
    client = admitted(admission, peers, "127.0.0.3")
    admission.authenticated(client, "web")
    flood = [admitted(admission, peers, f"127.0.1.{n}") for n in range(5)]
    assert [closed(guest, peers) for guest in flood[:2]] == [True, True]  # the two oldest
    assert admission._unauthenticated.keys() == set(flood[2:])
    assert client in admission._guests


def test_an_address_at_its_cap_closes_its_oldest_unauthenticated_then_its_longest_idle(peers):
    admission = Admission(LIMITS)
    first, *others = [admitted(admission, peers) for _ in range(4)]
    admitted(admission, peers)
    assert closed(first, peers)
    for guest in admission._by_address["127.0.0.1"]:
        admission.authenticated(guest, "web")
    others[0].state, others[1].state = (WAITING, 10.0), (WAITING, 5.0)  # 1 idle longest
    others[2].state = (WORKING, 0.0)
    admitted(admission, peers)
    assert closed(others[1], peers)


def test_an_address_whose_connections_are_all_busy_is_refused_and_others_still_get_in(peers):
    admission = Admission(LIMITS)
    for _ in range(4):
        guest = admitted(admission, peers)
        admission.authenticated(guest, "web")
        guest.state = (WORKING, 0.0)
    assert admission.admit(peers.accept()) is None
    assert admitted(admission, peers, "127.0.0.2")


def test_at_the_global_cap_only_an_unauthenticated_connection_makes_room(peers):
    admission = Admission(LIMITS)
    keyed = []
    for n in range(6):
        keyed.append(admitted(admission, peers, f"127.0.2.{n}"))
        if n:
            admission.authenticated(keyed[-1], "web")
    newcomer = admitted(admission, peers, "127.0.3.1")  # closes keyed[0], without a key
    assert closed(keyed[0], peers)
    admission.authenticated(newcomer, "web")
    assert admission.admit(peers.accept("127.0.3.2")) is None


def test_each_deadline_and_only_its_own_phase(peers):
    admission = Admission(LIMITS)
    silent, slow, idle, working = [admitted(admission, peers) for _ in range(4)]
    for guest in (slow, idle, working):
        admission.authenticated(guest, "web")
    start = silent.accepted
    slow.state, idle.state, working.state = (READING, start), (WAITING, start), (WORKING, 0.0)

    def overdue_at(seconds: float) -> dict[Guest, str]:
        return dict(admission.overdue(start + seconds))

    assert overdue_at(4) == {}
    assert overdue_at(6).keys() == {silent}
    assert "daemon.handshake_timeout" in overdue_at(6)[silent]
    assert overdue_at(21).keys() == {silent, slow}
    assert "daemon.frame_timeout" in overdue_at(21)[slow]
    assert overdue_at(301).keys() == {silent, slow, idle}  # never the one working
    assert "daemon.idle_timeout" in overdue_at(301)[idle]
    admission.sweep()  # now: nothing is overdue yet
    assert len(admission._guests) == 4


def test_leaving_forgets_the_connection_and_a_late_close_is_a_no_op(peers):
    admission = Admission(LIMITS)
    guest = admitted(admission, peers)
    admission.leave(guest)
    assert not admission._guests and not admission._by_address
    admission._close(guest, "late")  # its socket may be closed and reused by now
    guest.sock.setblocking(False)
    with pytest.raises(BlockingIOError):  # not shut down: nothing to read, no end
        guest.sock.recv(1)
