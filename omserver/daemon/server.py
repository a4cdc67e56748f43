"""The rpyc server, hardened: one exposed call, bounded packets, no pickle, no tracebacks,
and admission control on every connection (:mod:`omserver.daemon.admission`)."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading

from rpyc.core import SocketStream
from rpyc.utils.helpers import classpartial
from rpyc.utils.server import ThreadedServer

from omserver.daemon.admission import Admission, Guest, Limits, WatchedChannel
from omserver.daemon.service import DaemonService, Gate
from omserver.protocol.channel import PROTOCOL_CONFIG

log = logging.getLogger("omserver.server")

# Room for rpyc's own framing around a frame that is a little over the limit,
# so such a frame still reaches the service and gets a proper refusal.
PACKET_OVERHEAD = 64 * 1024


class DaemonServer(ThreadedServer):
    """A thread per admitted connection, TCP_NODELAY on each, packets capped at
    ``max_packet_bytes``; a watchdog thread closes the connections past a deadline."""

    def __init__(
        self, gate: Gate, host: str, port: int, *, max_packet_bytes: int, limits: Limits
    ) -> None:
        self.admission = Admission(limits)
        super().__init__(
            classpartial(DaemonService, gate, self.admission),  # one per connection
            hostname=host,
            port=port,
            # The daemon never calls into its peers; this only bounds rpyc's goodbye
            # handshake, which a misbehaving peer would otherwise hold for 30 s.
            protocol_config=dict(PROTOCOL_CONFIG, sync_request_timeout=1),
            logger=logging.getLogger("omserver.rpyc"),
        )
        self.max_packet_bytes = max_packet_bytes
        self._stopped = threading.Event()

    def start(self) -> None:
        watchdog = threading.Thread(
            target=self.admission.watch, args=(self._stopped,), name="admission", daemon=True
        )
        watchdog.start()
        try:
            super().start()
        finally:
            self._stopped.set()

    def _accept_method(self, sock: socket.socket) -> None:
        guest = self.admission.admit(sock)
        if guest is None:
            self.clients.discard(sock)
            sock.close()
            return
        # Without it every answer waits ~40 ms for the peer's delayed ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=self._serve_guest, args=(guest,), daemon=True).start()

    def _serve_guest(self, guest: Guest) -> None:
        """rpyc's own serving, with a watched, bounded channel instead of ``Channel``."""
        sock = guest.sock
        log.debug("serving the connection from %s", guest.peer)
        try:
            config = dict(
                self.protocol_config,
                credentials=guest,  # the service tells it which client the frames are from
                endpoints=(sock.getsockname(), sock.getpeername()),
                logger=self.logger,
            )
            channel = WatchedChannel(SocketStream(sock), self.max_packet_bytes, guest)
            self._handle_connection(self.service._connect(channel, config))
        except Exception as exc:  # garbage at the rpyc layer ends that connection only
            log.warning("closed the connection from %s: %r", guest.peer, exc)
        finally:
            self.admission.leave(guest)  # first: the watchdog must not shut a closed socket
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            self.clients.discard(sock)
            log.debug("done with the connection from %s", guest.peer)
