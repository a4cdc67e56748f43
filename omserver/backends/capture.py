"""A command's output, streamed as it is printed and kept within a byte limit.

Both backends keep output the same way (:class:`Capture`): the first bytes up
to the limit go out live as they are printed and stay in the record; past
that, only the last ``TAIL_MAX`` bytes are kept (the last lines usually say
what went wrong) and the rest is counted, never held. So the final text always
begins with exactly what was shown live, and 60 MiB printed on a host costs
the limit in memory, not 60 MiB. The record, omission note included, stays
within the limit, and line breaks at the very end are left out of it (as
Salt's ``cmd.run`` and Ansible's ``command`` always did): the live text holds
them back until more text follows.

Only the standard library here: the same file is the Salt execution module
``omserver_stream`` that :mod:`omserver.backends.saltstack` syncs to minions
(``run`` at the bottom), and the Ansible backend reads an ssh session's
output through :class:`Capture` in its worker processes.
"""

from __future__ import annotations

import codecs
import hashlib
import itertools
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

TAIL_MAX = 64 * 1024  # bytes of a long output's end kept beside its head
FLUSH_EVERY = 0.2  # seconds between live chunks of one command
STREAMS = ("stdout", "stderr")
EVENT_CHARS = 64 * 1024  # characters of output per Salt event at most
EOL = "\r\n"  # line-break characters left out at the end of an output

__virtualname__ = "omserver_stream"  # the name Salt loads this file under
__load__ = ["run"]  # the one function Salt offers of it


class Capture:
    """One stream of one command: ``feed`` it bytes, get back the text to show live."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.tail_limit = min(TAIL_MAX, limit // 4)
        self.head_limit = limit - self.tail_limit
        self._head: list[str] = []
        self._head_bytes = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._tail = bytearray()
        self._head_full = False
        self._held = ""  # line breaks ending the live text: shown once more text follows
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
        return self._show(self._decoder.decode(data, final=self._head_full))

    def finish(self) -> str:
        """The end of the stream: whatever the decoder still held, as live text."""
        return "" if self._head_full else self._show(self._decoder.decode(b"", final=True))

    def text(self) -> str:
        """The record: the head as shown live, then the tail (after a note when bytes
        were dropped between them), in at most ``limit`` bytes when truncated."""
        head = "".join(self._head)
        tail = bytes(self._tail)
        if not self.dropped:
            return head + (self._held + tail.decode("utf-8", "replace")).rstrip(EOL)
        skip = 0  # the tail may begin inside a character: start at the next one
        while skip < len(tail) and tail[skip] & 0xC0 == 0x80:
            skip += 1
        rest = tail[skip:].decode("utf-8", "replace").rstrip(EOL).encode()
        room = self.limit - len(head.encode())
        cut = 0  # bytes of the tail given up so that the note fits too
        while True:
            note = f"\n[... {self.dropped + skip + cut} bytes omitted ...]\n"
            need = min(len(rest), max(0, len(rest) + len(note) - room))
            while need < len(rest) and rest[need] & 0xC0 == 0x80:
                need += 1
            if need <= cut:
                return head + note + rest[cut:].decode()
            cut = need

    def _show(self, text: str) -> str:
        """Append ``text`` to the head; what of it goes live now (line breaks at its
        end wait for more text)."""
        text = self._held + text
        shown = text.rstrip(EOL)
        self._held = text[len(shown) :]
        self._head.append(shown)
        return shown

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
    *,
    last_flush: bool = True,
    cwd: str | None = None,
) -> dict[str, Any]:
    """Run ``argv`` (no shell) here; hand ``live`` ``{stream: text}`` chunks as it prints.

    Returns ``retcode`` (None when killed at ``timeout``), ``stdout``,
    ``stderr``, ``truncated``, ``timedout`` and ``head``: per stream, how many
    characters at the start of the text are the head (what goes live). Without
    ``last_flush`` the text printed since the last chunk is only in the
    returned text: for a caller whose result carries it anyway (Salt's return).
    """
    captures = {name: Capture(limit) for name in STREAMS}
    head = dict.fromkeys(STREAMS, 0)
    try:
        process = subprocess.Popen(  # noqa: S603 - a step's argv, no shell
            list(argv),
            cwd=cwd,
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
            "head": head,
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
                capture = captures[key.data]
                if data:
                    text = capture.feed(data)
                else:
                    selector.unregister(key.fileobj)
                    text = capture.finish()
                head[key.data] += len(text)
                pending[key.data].append(text)
            if time.monotonic() - flushed >= FLUSH_EVERY:
                flush()
                flushed = time.monotonic()
    if last_flush:
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
        "head": head,
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
    digest: str = "",
) -> dict[str, Any]:
    """Salt: run ``cmd`` (a list, no shell) on this minion, firing its output to the
    master's event bus under ``tag`` as it is printed.

    Each event is ``{"id", "seq", "stdout"/"stderr"}``, ``seq`` counting from 0 so
    the master can put them back in order; the text after the last event is only
    in the return, which the master reads anyway. A ``digest`` that is not this
    file's returns ``{"stale": True}`` without running anything: the master has
    a newer copy for the minion to sync first.
    """
    if digest and digest != hashlib.sha256(Path(__file__).read_bytes()).hexdigest():
        return {"stale": True}
    seq = itertools.count()

    def live(chunk: dict[str, str]) -> None:
        if sum(map(len, chunk.values())) > EVENT_CHARS:  # keep each event well in max_event_size
            pieces = [
                {name: text[at : at + EVENT_CHARS]}
                for name, text in chunk.items()
                for at in range(0, len(text), EVENT_CHARS)
            ]
        else:
            pieces = [chunk]
        for piece in pieces:
            data = {"id": __opts__["id"], "seq": next(seq), **piece}  # noqa: F821
            __salt__["event.fire_master"](data, tag)  # noqa: F821

    home = os.path.expanduser("~")  # where cmd.run ran commands
    return stream_command(
        cmd, env or {}, timeout, limit, live if tag else None, last_flush=False, cwd=home
    )
