"""Remembering request nonces for as long as their timestamps are acceptable."""

from __future__ import annotations

import heapq
import threading

from omserver.protocol.wire import FrameError


class ReplayCache:
    """Thread-safe, bounded set of (client, nonce) seen within the clock-skew window.

    A nonce is kept until its frame's timestamp leaves the window (``ts +
    skew``); after that the frame is refused as stale anyway. When ``capacity``
    unexpired nonces are held, the oldest is dropped and ``floor`` rises to its
    timestamp: frames at or below the floor are refused as if stale, so a full
    cache never lets a replay through.

    The cache lives in memory, so it knows nothing of the nonces a previous run
    of the daemon saw: frames stamped before ``not_before`` (the daemon's start)
    are refused, or a request captured just before a restart could be replayed
    just after it.
    """

    def __init__(
        self, skew: float, capacity: int = 200_000, not_before: float = float("-inf")
    ) -> None:
        self.skew = skew
        self.capacity = capacity
        self.not_before = not_before
        self.floor = float("-inf")
        self._seen: set[tuple[str, bytes]] = set()
        self._expiry: list[tuple[float, str, bytes]] = []  # heap of (ts + skew, client, nonce)
        self._lock = threading.Lock()

    def admit(self, client: str, nonce: bytes, ts: float, now: float) -> None:
        """Record the nonce, or raise ``FrameError`` ("stale" or "replayed")."""
        if abs(now - ts) > self.skew:
            offset = now - ts
            raise FrameError("stale", f"timestamp {offset:+.1f} s off (max ±{self.skew:g} s)")
        if ts < self.not_before:
            raise FrameError("stale", "timestamp from before the daemon started")
        with self._lock:
            self._expire(now)
            if ts <= self.floor:
                raise FrameError("stale", "timestamp older than the replay cache can vouch for")
            if (client, nonce) in self._seen:
                raise FrameError("replayed", "nonce already used")
            if len(self._seen) >= self.capacity:
                expiry, old_client, old_nonce = heapq.heappop(self._expiry)
                self._seen.discard((old_client, old_nonce))
                self.floor = max(self.floor, expiry - self.skew)
            self._seen.add((client, nonce))
            heapq.heappush(self._expiry, (ts + self.skew, client, nonce))

    def _expire(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] < now:
            _, client, nonce = heapq.heappop(self._expiry)
            self._seen.discard((client, nonce))

    def __len__(self) -> int:
        return len(self._seen)
