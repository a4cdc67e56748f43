"""The rpyc server, hardened: one exposed call, bounded packets, no pickle, no tracebacks."""

from __future__ import annotations

import logging
import socket
from typing import Any

from rpyc.core import SocketStream
from rpyc.utils.helpers import classpartial
from rpyc.utils.server import ThreadedServer

from omserver.daemon.service import DaemonService, Gate
from omserver.protocol.channel import PROTOCOL_CONFIG, BoundedChannel

log = logging.getLogger("omserver.server")

# Room for rpyc's own framing around a frame that is a little over the limit,
# so such a frame still reaches the service and gets a proper refusal.
PACKET_OVERHEAD = 64 * 1024


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
        log.debug("serving the connection from %s:%s", host, port)
        try:
            self._handle_connection(self.service._connect(channel, config))
        except Exception as exc:  # garbage at the rpyc layer ends that connection only
            log.warning("closed the connection from %s:%s: %r", host, port, exc)
        finally:
            log.debug("done with the connection from %s:%s", host, port)
