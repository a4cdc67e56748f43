"""A command's output, streamed as it is printed and kept within a byte limit.

Both backends keep output the same way (:class:`Capture`): the first bytes up
to the limit go out live as they are printed and stay in the record; past
that, only the last ``TAIL_MAX`` bytes are kept (the last lines usually say
what went wrong) and the rest is counted, never held. So the final text always
begins with exactly what was shown live, and 60 MiB printed on a host costs
the limit in memory, not 60 MiB.

Only the standard library here: the same file is the Salt execution module
``omserver_stream`` that :mod:`omserver.backends.saltstack` syncs to minions
(``run`` at the bottom), and the Ansible backend reads an ssh session's
output through :class:`Capture` in its worker processes.
"""

from __future__ import annotations

import codecs
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

TAIL_MAX = 64 * 1024  # bytes of a long output's end kept beside its head
FLUSH_EVERY = 0.2  # seconds between live chunks of one command
STREAMS = ("stdout", "stderr")

__virtualname__ = "omserver_stream"  # the name Salt loads this file under


class Capture:
    """One stream of one command: ``feed`` it bytes, get back the text to show live."""

    def __init__(self, limit: int) -> None:
        self.tail_limit = min(TAIL_MAX, limit // 4)
        self.head_limit = limit - self.tail_limit
        self._head: list[str] = []
        self._head_bytes = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._tail = bytearray()
        self._head_full = False
        self.dropped = 0  # bytes in neither the head nor the tail

    @property
    def truncated(self) -> bool:
        return self.dropped > 0

    def feed(self, data: bytes) -> str:
        """Take the next ``data``; the part of it that belongs to the head, as text."""
        if self._head_full:
            self._keep_tail(data)
            return ""
        room = self.head_limit - self._head_bytes
        if len(data) > room:
            while room > 0 and data[room] & 0xC0 == 0x80:  # never cut a character in two
                room -= 1
            self._head_full = True
            self._keep_tail(data[room:])
            data = data[:room]
        self._head_bytes += len(data)
        text = self._decoder.decode(data, final=self._head_full)
        self._head.append(text)
        return text

    def finish(self) -> str:
        """The end of the stream: whatever the decoder still held, as live text."""
        text = "" if self._head_full else self._decoder.decode(b"", final=True)
        self._head.append(text)
        return text

    def text(self) -> str:
        """The record: the head as shown live, then the tail (after a note when bytes
        were dropped between them)."""
        tail = bytes(self._tail)
        skip = 0
        if self.dropped:  # the tail may begin inside a character: start at the next one
            while skip < len(tail) and tail[skip] & 0xC0 == 0x80:
                skip += 1
        head = "".join(self._head)
        rest = tail[skip:].decode("utf-8", "replace")
        if not self.dropped and not rest:
            return head
        note = f"\n[… {self.dropped + skip} bytes omitted …]\n" if self.dropped else ""
        return head + note + rest

    def _keep_tail(self, data: bytes) -> None:
        self._tail += data
        excess = len(self._tail) - self.tail_limit
        if excess > 0:
            del self._tail[:excess]
            self.dropped += excess


Live = Callable[[dict[str, str]], None]


def stream_command(
    argv: Sequence[str],
    env: Mapping[str, str],
    timeout: float,
    limit: int,
    live: Live | None = None,
) -> dict[str, Any]:
    """Run ``argv`` (no shell) here; hand ``live`` ``{stream: text}`` chunks as it prints.

    Returns ``retcode`` (None when killed at ``timeout``), ``stdout``,
    ``stderr``, ``truncated`` and ``timedout``.
    """
    captures = {name: Capture(limit) for name in STREAMS}
    try:
        process = subprocess.Popen(
            list(argv),
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # one group to kill at the timeout
        )
    except OSError as exc:
        return {
            "retcode": 127,
            "stdout": "",
            "stderr": f"{argv[0]}: {exc.strerror}",
            "truncated": False,
            "timedout": False,
        }
    pending = {name: [] for name in STREAMS}
    flushed = time.monotonic()

    def flush() -> None:
        chunk = {name: "".join(parts) for name, parts in pending.items() if parts}
        chunk = {name: text for name, text in chunk.items() if text}
        for parts in pending.values():
            parts.clear()
        if chunk and live is not None:
            live(chunk)

    deadline = time.monotonic() + timeout
    timedout = False
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ, "stdout")
        selector.register(process.stderr, selectors.EVENT_READ, "stderr")
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                timedout = True
                _kill_group(process)
                break
            for key, _ in selector.select(min(left, FLUSH_EVERY)):
                data = os.read(key.fd, 65536)
                if data:
                    pending[key.data].append(captures[key.data].feed(data))
                else:
                    selector.unregister(key.fileobj)
                    pending[key.data].append(captures[key.data].finish())
            if time.monotonic() - flushed >= FLUSH_EVERY:
                flush()
                flushed = time.monotonic()
    flush()
    process.stdout.close()
    process.stderr.close()
    retcode = process.wait()
    return {
        "retcode": None if timedout else retcode,
        "stdout": captures["stdout"].text(),
        "stderr": captures["stderr"].text(),
        "truncated": any(c.truncated for c in captures.values()),
        "timedout": timedout,
    }


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run(
    cmd: list[str],
    env: dict[str, str] | None = None,
    timeout: float = 3600,
    limit: int = 1024 * 1024,
    tag: str = "",
) -> dict[str, Any]:
    """Salt: run ``cmd`` (a list, no shell) on this minion, firing its output to the
    master's event bus under ``tag`` as it is printed."""

    def live(chunk: dict[str, str]) -> None:
        __salt__["event.fire_master"]({"id": __opts__["id"], **chunk}, tag)  # noqa: F821

    return stream_command(cmd, env or {}, timeout, limit, live if tag else None)
