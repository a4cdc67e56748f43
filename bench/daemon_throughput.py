"""Daemon throughput, measured side by side in one run; prints ``name=value`` lines.

    .venv/bin/python bench/daemon_throughput.py [--calls N] [--rounds R]

ping_ops_per_s           encrypted ``ping`` round trips per second (one client thread)
raw_rpyc_echo_ops_per_s  a plain rpyc echo of the same frame size, per second
ping_vs_raw_rpyc         their ratio (goal >= 0.5)

Each server runs in its own process, started here: ``python -m omserver serve``
with a temporary data folder and key, and a bare rpyc ``ThreadedServer`` (with
TCP_NODELAY, as the daemon) whose one method returns its argument. Short rounds
alternate between the two so that a noisy neighbour hurts both alike; the rates
are the medians over the rounds, the ratio the median of each round's ratio.

run_1003_vs_localclient  end-to-end ``run`` of module 1003 on two minions (client →
                         daemon → job record → Salt → each host's row → answer)
                         over the raw ``LocalClient.cmd`` of the same command on the
                         same minions (goal <= 1.10)

For the last one the script starts the Salt lab of the tests (a salt-master and
two minions on loopback) and a daemon on it recording into a fresh SQLite
database; the two calls alternate, and the ratio is the median of the pairs.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median

import rpyc
from rpyc.core import SocketStream
from rpyc.utils.factory import connect_stream
from rpyc.utils.server import ThreadedServer

from omserver.client import Client, DaemonError
from omserver.config import BASE_DIR
from omserver.protocol import wire
from omserver.protocol.keys import KeyStore
from omserver.protocol.scope import UNLISTED, Scope


class EchoService(rpyc.Service):
    def exposed_echo(self, data: bytes) -> bytes:
        return data


class NoDelayServer(ThreadedServer):
    def _accept_method(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super()._accept_method(sock)


def serve_echo(port: int) -> None:
    NoDelayServer(EchoService, hostname="127.0.0.1", port=port).start()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise SystemExit(f"{what} did not start within {timeout:.0f} s")


@contextmanager
def process(argv: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def rate(call: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return calls / (time.perf_counter() - start)


def daemon_env(data_dir: str, **extra: str) -> dict[str, str]:
    """Environment for a daemon of its own, its database migrated and the demo data loaded
    (modules 1001-1007 enabled, as `make run` has them)."""
    env = {
        **os.environ,
        "OMSERVER_PATHS_DATA_DIR": data_dir,
        "OMSERVER_DATABASE_URL": "",
        "OMSERVER_DAEMON_ADDRESS": f"127.0.0.1:{free_port()}",
        "OMSERVER_DAEMON_LOG_LEVEL": "warning",
        **extra,
    }
    env.pop("OMSERVER_CONFIG", None)
    for command in (["migrate"], ["loaddata", str(BASE_DIR / "sql" / "demo-data.json")]):
        subprocess.run(
            [sys.executable, str(BASE_DIR / "manage.py"), *command, "-v0"], env=env, check=True
        )
    return env


@contextmanager
def daemon(data_dir: str, **extra: str) -> Iterator[tuple[Client, str]]:
    # The lab's minions are not in the bench's inventory: a lab tool's scope.
    scope = Scope(modules=frozenset({1003}), hosts=(UNLISTED,))
    key = KeyStore(Path(data_dir) / "clients.json").add("bench", scope)
    env = daemon_env(data_dir, **extra)
    with process([sys.executable, "-m", "omserver", "serve"], env):
        client = Client(env["OMSERVER_DAEMON_ADDRESS"], "bench", key)
        wait_until(lambda: _answers(client.ping), "the daemon", timeout=60)
        try:
            yield client, key
        finally:
            client.close()


def ping_vs_raw_rpyc(calls: int, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data_dir:
        echo_port = free_port()
        echo_argv = [sys.executable, __file__, "--echo-server", str(echo_port)]
        with daemon(data_dir) as (client, key), process(echo_argv):
            wait_until(lambda: _listening(echo_port), "the echo server")
            echo = connect_stream(SocketStream.connect("127.0.0.1", echo_port, nodelay=True))
            frame, _ = wire.seal_request(
                "bench", wire.cipher(wire.decode_key(key)), "ping", {}, now=time.time()
            )
            payload = bytes(len(frame))  # the same size as a ping request
            echo_call = echo.root.echo
            pings, echoes = [], []
            for number in range(rounds):
                pair = [(pings, client.ping), (echoes, lambda: echo_call(payload))]
                for results, call in pair[:: 1 if number % 2 else -1]:  # alternate who goes first
                    results.append(rate(call, calls))
            echo.close()
    return {
        "ping_ops_per_s": round(median(pings)),
        "raw_rpyc_echo_ops_per_s": round(median(echoes)),
        "ping_vs_raw_rpyc": round(median(p / e for p, e in zip(pings, echoes, strict=True)), 3),
    }


def run_1003_vs_localclient(rounds: int) -> dict[str, float]:
    sys.path.insert(0, str(BASE_DIR))  # the Salt lab lives in tests/
    from tests.lab.salt import SaltLab

    with SaltLab() as lab, tempfile.TemporaryDirectory() as data_dir:
        targets = [t.to_dict() for t in lab.targets]
        minions = [t["hostname"] for t in targets]
        raw = lab.client()
        argv = ["head", "-n", "1", "--", "/etc/issue"]
        kwarg = {"python_shell": False, "output_loglevel": "quiet", "ignore_retcode": True}

        def raw_call() -> None:
            answer = raw.cmd(minions, "cmd.run_all", [argv], tgt_type="list", kwarg=kwarg)
            assert sorted(answer) == minions, answer

        with daemon(data_dir, **lab.settings()) as (client, _key):

            def our_call() -> None:
                state = client.run(1003, targets, timeout=60)
                assert len(state["results"]) == len(minions), state

            our_call(), raw_call()  # warm both paths once
            ours, theirs = [], []
            for number in range(rounds):
                pair = [(ours, our_call), (theirs, raw_call)]
                for results, call in pair[:: 1 if number % 2 else -1]:
                    start = time.perf_counter()
                    call()
                    results.append(time.perf_counter() - start)
    return {
        "run_1003_ms": round(median(ours) * 1000, 1),
        "localclient_cmd_ms": round(median(theirs) * 1000, 1),
        "run_1003_vs_localclient": round(
            median(o / t for o, t in zip(ours, theirs, strict=True)), 3
        ),
    }


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def _answers(call: Callable[[], object]) -> bool:
    try:
        call()
    except DaemonError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="calls per round")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--echo-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        serve_echo(args.echo_server)
        return
    for name, value in ping_vs_raw_rpyc(args.calls, args.rounds).items():
        print(f"{name}={value}", flush=True)
    for name, value in run_1003_vs_localclient(args.rounds).items():
        print(f"{name}={value}", flush=True)


if __name__ == "__main__":
    main()
