"""The rpyc connection both ends use: the locked-down protocol settings and a
channel that refuses oversized packets before allocating them."""

from __future__ import annotations

import logging
import zlib
from typing import Any

from rpyc.core import Channel, SocketStream

log = logging.getLogger("omserver.channel")

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
        length, compressed = self.FRAME_HEADER.unpack(self._header())
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

    def _header(self) -> bytes:
        return self.stream.read(self.FRAME_HEADER.size)

    def _drop(self, what: str) -> None:
        log.warning("refused %s from %s; connection closed", what, self.peer)
        self.stream.close()  # no goodbye handshake with this peer
        raise RefusedPacketError(what)
