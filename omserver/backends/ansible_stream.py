"""Live output for the Ansible backend: Command steps run by an action plugin of ours.

Ansible's ``command`` module hands back a command's output only at its end, as
one JSON document (60 MiB printed cost 300 MiB in the job process and 396 MiB
in the worker). So a Command step runs as the ``omserver_command`` action
(:class:`ActionModule`, in Ansible's worker process like any task): it starts
``ssh`` with the command line Ansible's own ssh connection plugin builds (key,
port, user, known_hosts, ControlPersist are Ansible's), or the argv itself for
the ``local`` connection, and reads stdout/stderr as they arrive into
:class:`~omserver.backends.capture.Capture` — the head goes out live, only a
bounded record stays.

The live text reaches the job process through a :class:`LiveChannel`: a pipe
made before Ansible forks its workers (``ansible.utils.multiprocessing`` forks
them), so every worker inherits its writing end. Each write is one frame of at
most ``PIPE_BUF`` bytes, which the kernel never interleaves with another
worker's, so no lock is shared with the workers. A thread in the job process
reads the frames and calls ``output``. A host's result comes back through
Ansible's own queue; before it is emitted the backend calls
:meth:`LiveChannel.settle`, which puts a barrier frame behind everything that
host's worker wrote and waits for it to come out, then lets nothing more of
that host through.
"""

from __future__ import annotations

import logging
import os
import select
import selectors
import shlex
import struct
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ansible.plugins.action import ActionBase

from omserver.backends.base import Output
from omserver.backends.capture import FLUSH_EVERY, STREAMS, Capture, stream_command

ACTION = "omserver_command"  # the task's action name; the plugin file in ansible_plugins/
KILL_AFTER = 5  # seconds from the remote timeout's SIGTERM to its SIGKILL
MARK = b"+"  # the remote shell prints it first, so stdout proves a session began

_HEADER = struct.Struct(">BHH")  # kind, host name bytes, payload bytes
_TEXT = dict(enumerate(STREAMS))  # kinds 0 and 1: a piece of stdout or stderr
_BARRIER, _STOP = 2, 3
log = logging.getLogger(__name__)


class LiveChannel:
    """The job process's end: workers write frames into ``fd``, a thread hands the
    text to ``output``. Made before ``tqm.run``, closed after it."""

    def __init__(self, output: Output) -> None:
        self._output = output
        self._read, self.fd = os.pipe()
        self._closed: set[str] = set()  # hosts whose result went out
        self._passed = 0  # barriers the reader has come to
        self._sent = 0
        self._arrived = threading.Condition()
        self._thread = threading.Thread(target=self._pump, name="ansible-live", daemon=True)
        self._thread.start()

    def settle(self, host: str) -> None:
        """Deliver all that ``host``'s worker wrote so far, then drop the rest: call it
        once the host's result is in, before emitting it."""
        self._sent += 1
        _write(self.fd, _BARRIER, host, b"")
        with self._arrived:
            self._arrived.wait_for(lambda: self._passed >= self._sent)

    def close(self) -> None:
        """Deliver what the workers wrote and stop the reader (the workers have ended)."""
        _write(self.fd, _STOP, "", b"")
        self._thread.join()
        os.close(self.fd)

    def _pump(self) -> None:
        with open(self._read, "rb") as pipe:  # buffered: a frame may straddle two reads
            while header := pipe.read(_HEADER.size):
                kind, size, length = _HEADER.unpack(header)
                host = pipe.read(size).decode()
                payload = pipe.read(length)
                if kind == _STOP:
                    return
                if kind == _BARRIER:
                    with self._arrived:
                        self._closed.add(host)
                        self._passed += 1
                        self._arrived.notify_all()
                elif host not in self._closed:
                    try:
                        self._output(host, _TEXT[kind], payload.decode())
                    except Exception:  # a failing consumer must not stop the results
                        log.exception("live output of %s was lost", host)


class LiveSender:
    """The worker's end: ``{stream: text}`` chunks for one host, cut into frames."""

    def __init__(self, fd: int, host: str) -> None:
        self._fd = fd
        self._host = host
        self._room = select.PIPE_BUF - _HEADER.size - len(host.encode())

    def __call__(self, chunk: Mapping[str, str]) -> None:
        for kind, stream in _TEXT.items():
            data = chunk.get(stream, "").encode()
            start = 0
            while start < len(data):
                end = min(start + self._room, len(data))
                while end < len(data) and data[end] & 0xC0 == 0x80:  # whole characters only
                    end -= 1
                _write(self._fd, kind, self._host, data[start:end])
                start = end


def _write(fd: int, kind: int, host: str, payload: bytes) -> None:
    name = host.encode()
    os.write(fd, _HEADER.pack(kind, len(name), len(payload)) + name + payload)


def remote_command(argv: Sequence[str], env: Mapping[str, str], seconds: float) -> str:
    """The command line ssh hands the host's login shell: a POSIX shell that exports
    ``env``, prints :data:`MARK`, then becomes ``argv`` (quoted, never pasted)
    bounded by coreutils ``timeout``."""
    script = "".join(f"export {name}={shlex.quote(value)}; " for name, value in env.items())
    script += f"printf {MARK.decode()}; exec timeout -k {KILL_AFTER} {seconds:.3f} "
    return "/bin/sh -c " + shlex.quote(script + shlex.join(argv))


def stream_ssh(
    command: Sequence[bytes], deadline: float, limit: int, live: LiveSender
) -> dict[str, Any]:
    """Run an ssh ``command`` whose remote side begins with :func:`remote_command`,
    handing ``live`` its output as it is printed; killed at ``deadline`` (monotonic).

    Returns ``retcode`` (None when killed at the deadline), ``stdout``, ``stderr``,
    ``truncated``, ``timedout`` and ``connected``: whether the session started
    (without it, ssh's own 255 means the host was not reached).
    """
    captures = {name: Capture(limit) for name in STREAMS}
    pending: dict[str, list[str]] = {name: [] for name in STREAMS}
    process = subprocess.Popen(  # noqa: S603 - ssh's argv from Ansible, the remote part quoted
        list(command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    connected = timedout = False
    flushed = -FLUSH_EVERY  # a line after a quiet spell goes out at once, a flood in batches
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ, "stdout")
        selector.register(process.stderr, selectors.EVENT_READ, "stderr")
        while selector.get_map():
            now = time.monotonic()
            if now >= deadline:
                timedout = True
                process.kill()  # the remote timeout ends the command itself
                break
            wait = deadline - now
            if _waiting(pending):
                wait = min(wait, flushed + FLUSH_EVERY - now)
            for key, _ in selector.select(max(0, wait)):
                data = os.read(key.fd, 65536)
                if not data:
                    selector.unregister(key.fileobj)
                    pending[key.data].append(captures[key.data].finish())
                    continue
                if key.data == "stdout" and not connected:
                    connected = True  # stdout only ever comes from the host
                    data = data.removeprefix(MARK)
                pending[key.data].append(captures[key.data].feed(data))
            if _waiting(pending) and time.monotonic() - flushed >= FLUSH_EVERY:
                _flush(pending, live)
                flushed = time.monotonic()
    _flush(pending, live)
    process.stdout.close()
    process.stderr.close()
    retcode = process.wait()
    return {
        "retcode": None if timedout else retcode,
        "stdout": captures["stdout"].text(),
        "stderr": captures["stderr"].text(),
        "truncated": any(c.truncated for c in captures.values()),
        "timedout": timedout,
        "connected": connected,
    }


def _waiting(pending: dict[str, list[str]]) -> bool:
    return any(any(parts) for parts in pending.values())


def _flush(pending: dict[str, list[str]], live: LiveSender) -> None:
    chunk = {name: "".join(parts) for name, parts in pending.items()}
    for parts in pending.values():
        parts.clear()
    if any(chunk.values()):
        live(chunk)


class ActionModule(ActionBase):
    """``omserver_command``: run ``argv`` with ``env`` on the task's host until
    ``deadline``, streaming its output into the channel ``channel``."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("argv", "env", "deadline", "limit", "channel"))

    def run(
        self, tmp: str | None = None, task_vars: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        super().run(tmp, task_vars)
        args = self._task.args
        argv, env, deadline = list(args["argv"]), dict(args["env"]), float(args["deadline"])
        live = LiveSender(int(args["channel"]), (task_vars or {})["inventory_hostname"])
        connection = self._connection
        seconds = deadline - time.monotonic()
        if seconds <= 0:
            outcome: dict[str, Any] = {"retcode": None, "timedout": True, "connected": True}
        elif connection.transport == "local":
            outcome = stream_command(argv, env, seconds, int(args["limit"]), live)
            outcome["connected"] = True
        else:  # ssh: the command line exactly as the ssh plugin's exec_command builds it
            connection.host = connection.get_option("host") or self._play_context.remote_addr
            command = connection._build_command(
                connection.get_option("ssh_executable"),
                "ssh",
                connection.host,
                remote_command(argv, env, seconds),
            )
            outcome = stream_ssh(command, deadline, int(args["limit"]), live)
        return _task_result(outcome, seconds)


def _task_result(outcome: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Ansible's shape of a command's outcome (``unreachable``, ``failed``, ``rc``…)."""
    result = {
        "changed": True,
        "rc": outcome["retcode"],
        "stdout": outcome.get("stdout", ""),
        "stderr": outcome.get("stderr", ""),
        "truncated": outcome.get("truncated", False),
    }
    if outcome["timedout"]:
        result.update(failed=True, timedout=True, msg=f"no end within {max(0, seconds):.0f} s")
    elif not outcome["connected"] and outcome["retcode"] == 255:
        msg = result["stderr"] or "ssh could not connect"
        result.update(rc=None, unreachable=True, failed=False, msg=msg)
    else:
        result["failed"] = outcome["retcode"] != 0
    return result
