"""A real ``python -m omserver serve`` on a free loopback port, for tests that talk rpyc."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from omserver.client import Client, DaemonError
from omserver.protocol.keys import KeyStore
from omserver.protocol.scope import ANY, UNLISTED, WEB, Scope
from tests.lab.procs import free_port, spawn, stop, wait_for

# The lab's tools: any module on any target (the labs' hosts are not in the inventory),
# for anyone, on any job. The web's key has the web's scope, as deployed.
LAB_TOOL = Scope(modules=None, hosts=(ANY, UNLISTED), on_behalf=True, all_jobs=True)


@dataclass
class RunningDaemon:
    address: str
    data_dir: Path
    log_path: Path
    keys: KeyStore
    issued: dict[str, str] = field(default_factory=dict)  # client id -> key
    process: subprocess.Popen | None = None

    def add_client(self, name: str, scope: Scope = LAB_TOOL) -> str:
        """A new key for ``name``, as ``omserver keys add`` makes it (a lab tool's scope)."""
        self.issued[name] = self.keys.add(name, scope)
        return self.issued[name]

    def client(self, name: str = "lab") -> Client:
        key = self.issued.get(name) or self.add_client(name)
        return Client(self.address, name, key, timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def refusals(self) -> int:
        """How many frames the daemon has logged as refused."""
        return self.log().count("refused frame from")


@contextmanager
def running_daemon(
    data_dir: Path,
    env: Mapping[str, str] | None = None,
    issued: dict[str, str] | None = None,
    *,
    database_url: str,
) -> Iterator[RunningDaemon]:
    """Start the daemon with its state in ``data_dir`` and a "web" key (the web's scope:
    lab targets go through a lab tool's key, ``client()``); stop it after.

    ``database_url`` is where it records jobs: the test database (fixture
    ``test_database_url``). ``issued`` hands over the keys a previous daemon on
    the same ``data_dir`` made.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    address = (env or {}).get("OMSERVER_DAEMON_ADDRESS") or f"127.0.0.1:{free_port()}"
    inherited = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OMSERVER_CONFIG", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    environ = {
        **inherited,  # a config file, if any, comes only from ``env``
        "OMSERVER_PATHS_DATA_DIR": str(data_dir),
        "OMSERVER_DAEMON_ADDRESS": address,
        "OMSERVER_DAEMON_LOG_LEVEL": "info",
        "OMSERVER_DATABASE_URL": database_url,
        **(env or {}),
    }
    daemon = RunningDaemon(
        address,
        data_dir,
        data_dir / "daemon.log",
        KeyStore(data_dir / "clients.json"),
        dict(issued or {}),
    )
    if "web" not in daemon.issued:
        daemon.add_client("web", WEB)
    proc = daemon.process = spawn(
        [sys.executable, "-m", "omserver", "serve"], daemon.log_path, environ
    )
    try:
        with daemon.client("web") as probe:
            wait_for(lambda: proc.poll() is not None or answers(probe), 20, "omserver daemon")
        assert proc.poll() is None, f"the daemon exited:\n{daemon.log()}"
        yield daemon
    finally:
        stop(proc, grace=5)


def answers(client: Client) -> bool:
    try:
        client.ping()
    except DaemonError:
        return False
    return True
