"""The rpyc server, hardened: one exposed call, bounded packets, no pickle, no tracebacks."""

from __future__ import annotations

import logging
import socket
import zlib
from typing import Any

from rpyc.core import Channel, SocketStream
from rpyc.utils.helpers import classpartial
from rpyc.utils.server import ThreadedServer

from omserver.service import DaemonService, Gate

log = logging.getLogger("omserver.server")

# Room for rpyc's own framing around a frame that is a little over the limit,
# so such a frame still reaches the service and gets a proper refusal.
PACKET_OVERHEAD = 64 * 1024

PROTOCOL_CONFIG: dict[str, Any] = {
    "allow_safe_attrs": False,
    "allow_public_attrs": False,
    "allow_all_attrs": False,
    "allow_setattr": False,
    "allow_delattr": False,
    "allow_pickle": False,
    "include_local_traceback": False,  # tracebacks stay in the daemon's log
    "include_local_version": False,
    "import_custom_exceptions": False,
    "instantiate_custom_exceptions": False,
    "instantiate_oldstyle_exceptions": False,
}


class RefusedPacketError(EOFError):
    """Ends the connection: rpyc's serve loop takes an EOFError as a clean close."""


class BoundedChannel(Channel):
    """An rpyc channel that refuses packets over ``limit``, compressed or not.

    Plain rpyc allocates whatever length a peer announces (up to 4 GiB) and
    inflates zlib packets without bound; this caps both before allocating.
    """

    __slots__ = ("limit", "peer")

    def __init__(self, stream: SocketStream, limit: int, peer: str) -> None:
        super().__init__(stream)
        self.limit = limit
        self.peer = peer

    def recv(self) -> bytes:
        header = self.stream.read(self.FRAME_HEADER.size)
        length, compressed = self.FRAME_HEADER.unpack(header)
        if length > self.limit:
            self._drop(f"a packet of {length} bytes > {self.limit}")
        data = self.stream.read(length + len(self.FLUSHER))[: -len(self.FLUSHER)]
        if compressed:
            inflater = zlib.decompressobj()
            try:
                data = inflater.decompress(data, self.limit)
            except zlib.error:
                self._drop("a corrupt compressed packet")
            if inflater.unconsumed_tail:
                self._drop(f"a packet inflating beyond {self.limit} bytes")
        return data

    def _drop(self, what: str) -> None:
        log.warning("refused %s from %s; connection closed", what, self.peer)
        self.stream.close()  # no goodbye handshake with this peer
        raise RefusedPacketError(what)


class DaemonServer(ThreadedServer):
    """A thread per connection, at most ``max_connections`` of them, TCP_NODELAY on
    each, packets capped at ``max_packet_bytes``.

    The cap counts connections before any frame is checked: without it, anyone who
    can reach the port could open connections until the daemon runs out of threads.
    """

    def __init__(
        self, gate: Gate, host: str, port: int, *, max_packet_bytes: int, max_connections: int
    ) -> None:
        super().__init__(
            classpartial(DaemonService, gate),  # one service object per connection
            hostname=host,
            port=port,
            # The daemon never calls into its peers; this only bounds rpyc's goodbye
            # handshake, which a misbehaving peer would otherwise hold for 30 s.
            protocol_config=dict(PROTOCOL_CONFIG, sync_request_timeout=1),
            logger=logging.getLogger("omserver.rpyc"),
        )
        self.max_packet_bytes = max_packet_bytes
        self.max_connections = max_connections

    def _accept_method(self, sock: socket.socket) -> None:
        if len(self.clients) > self.max_connections:  # rpyc added this one already
            self.clients.discard(sock)
            peer = ":".join(map(str, sock.getpeername()[:2]))
            log.warning(
                "refused a connection from %s: %d open already (daemon.max_connections)",
                peer,
                self.max_connections,
            )
            sock.close()
            return
        # Without it every answer waits ~40 ms for the peer's delayed ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super()._accept_method(sock)

    def _serve_client(self, sock: socket.socket, credentials: Any) -> None:
        """rpyc's own, with a bounded channel instead of ``Channel``."""
        host, port = sock.getpeername()[:2]
        config = dict(
            self.protocol_config,
            credentials=credentials,
            endpoints=(sock.getsockname(), (host, port)),
            logger=self.logger,
        )
        channel = BoundedChannel(SocketStream(sock), self.max_packet_bytes, f"{host}:{port}")
        try:
            self._handle_connection(self.service._connect(channel, config))
        except Exception as exc:  # garbage at the rpyc layer ends that connection only
            log.warning("closed the connection from %s:%s: %r", host, port, exc)
