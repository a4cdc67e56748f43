"""A real salt-master and salt-minions on 127.0.0.1, each a separate process.

Configs, keys, caches and logs live in one temp folder; the master listens on
free ports and accepts the minions' keys automatically. Usable outside pytest::

    with SaltLab() as lab:
        print(lab.master_config, lab.minion_ids)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from omserver.sdk import Target
from tests.lab.procs import free_port, spawn, stop, wait_for

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


class SaltLab:
    """A salt-master plus minions named ``minion_ids``; ``file_roots`` is served as salt://.

    Commands run by a minion see ``OMLAB_HOST`` = its id, so a test can make
    the hosts of one machine behave differently. ``gather_job_timeout`` and
    ``check_after`` (the daemon's ``salt.timeout``)
    are low so that a stopped minion is known within about three seconds.
    """

    def __init__(
        self,
        minion_ids: tuple[str, ...] = ("lab-minion-1", "lab-minion-2"),
        *,
        gather_job_timeout: int = 2,
        check_after: float = 1.0,
        ready_timeout: float = 240.0,
    ) -> None:
        self.minion_ids = list(minion_ids)
        self.gather_job_timeout = gather_job_timeout
        self.check_after = check_after
        self.ready_timeout = ready_timeout
        self.root = Path(tempfile.mkdtemp(prefix="omserver-salt-"))
        self.file_roots = self.root / "srv"
        self.master_dir = self.root / "master"
        self.master_config = self.master_dir / "master"
        self._master: subprocess.Popen | None = None
        self._minions: dict[str, subprocess.Popen | None] = {}
        self._client: Any = None

    # -- life cycle ---------------------------------------------------------------

    def __enter__(self) -> SaltLab:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        publish_port, ret_port = free_port(), free_port()
        self.file_roots.mkdir(parents=True)
        self._write(
            self.master_config,
            {
                "root_dir": str(self.master_dir),
                "interface": "127.0.0.1",
                "publish_port": publish_port,
                "ret_port": ret_port,
                "auto_accept": True,
                "worker_threads": 2,
                "max_event_size": 4 * 1024 * 1024,  # above modules.output_limit; see saltstack.py
                "gather_job_timeout": self.gather_job_timeout,
                "file_roots": {"base": [str(self.file_roots)]},
                "log_level_logfile": "warning",
                "enable_fqdns_grains": False,
            },
        )
        self._master = spawn(
            [str(BIN / "salt-master"), "-c", str(self.master_dir)], self.root / "master.out"
        )
        # A LocalClient reads the master's key once, when made: wait until it exists.
        root_key = self.master_dir / "var/cache/salt/master/.root_key"
        events = self.master_dir / "var/run/salt/master/master_event_pub.ipc"
        wait_for(
            lambda: root_key.exists() and events.exists(),
            self.ready_timeout,
            "salt-master key and event bus",
        )
        for minion_id in self.minion_ids:
            self._write(
                self._minion_dir(minion_id) / "minion",
                {
                    "id": minion_id,
                    "root_dir": str(self._minion_dir(minion_id)),
                    "master": "127.0.0.1",
                    "master_port": ret_port,
                    "publish_port": publish_port,
                    "acceptance_wait_time": 1,
                    "random_reauth_delay": 0,
                    "recon_default": 200,
                    "recon_max": 1000,
                    "enable_fqdns_grains": False,
                    "mine_enabled": False,
                    "max_event_size": 4 * 1024 * 1024,  # returns pass the minion's event bus too
                    "log_level_logfile": "warning",
                },
            )
            self.start_minion(minion_id, wait=False)
        self.wait_ready(self.minion_ids, sync=True)

    def close(self) -> None:
        for minion_id in list(self._minions):
            self.stop_minion(minion_id)
        if self._client is not None:
            self._client.destroy()
            self._client = None
        stop(self._master)
        shutil.rmtree(self.root, ignore_errors=True)

    def start_minion(self, minion_id: str, *, wait: bool = True) -> None:
        directory = self._minion_dir(minion_id)
        self._minions[minion_id] = spawn(
            [str(BIN / "salt-minion"), "-c", str(directory)],
            self.root / f"{minion_id}.out",
            env={**os.environ, "OMLAB_HOST": minion_id},
        )
        if wait:
            self.wait_ready([minion_id])

    def stop_minion(self, minion_id: str) -> None:
        """Kill the minion at once, as a crash or a power cut would."""
        stop(self._minions.pop(minion_id, None), grace=0)

    def wait_ready(self, minion_ids: list[str], *, sync: bool = False) -> None:
        """Until each of ``minion_ids`` answers test.ping; with ``sync``, then until
        each has the Salt backend's execution module, as a deployed minion would
        (tests/test_stream_salt.py covers the minion that has not).

        Asked from a separate process: a LocalClient polling a master that is
        still starting leaks sockets and event loops, which would turn into
        ResourceWarnings (errors, under pytest) in this one.
        """
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.lab.salt",
                "sync" if sync else "wait",
                str(self.master_config),
                str(self.ready_timeout),
                *minion_ids,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise TimeoutError(f"salt minions {minion_ids} not ready: {done.stdout}{done.stderr}")

    # -- what tests and the daemon need ---------------------------------------------

    @property
    def targets(self) -> list[Target]:
        return [Target(hostname=m, lan_ip="127.0.0.1") for m in self.minion_ids]

    def client(self) -> Any:
        """A LocalClient on this master (shared; made on first use) — for benches:
        it imports Salt into this process."""
        if self._client is None:
            import salt.client
            import salt.config

            opts = salt.config.client_config(str(self.master_config))
            self._client = salt.client.LocalClient(mopts=opts)
        return self._client

    def settings(self) -> dict[str, str]:
        """OMSERVER_* environment that points the daemon at this master."""
        return {
            "OMSERVER_DAEMON_BACKEND": "saltstack",
            "OMSERVER_SALT_MASTER_CONFIG": str(self.master_config),
            "OMSERVER_SALT_FILE_ROOTS": str(self.file_roots),
            "OMSERVER_SALT_GATHER_JOB_TIMEOUT": str(self.gather_job_timeout),
            "OMSERVER_SALT_TIMEOUT": str(self.check_after),
        }

    def synced_module(self, minion_id: str, name: str) -> Path:
        """Where the minion keeps the execution module ``name`` it got by saltutil.sync_modules."""
        cache = self._minion_dir(minion_id) / "var/cache/salt/minion"
        return cache / "extmods/modules" / f"{name}.py"

    # -- helpers --------------------------------------------------------------------

    def _minion_dir(self, minion_id: str) -> Path:
        return self.root / "minions" / minion_id

    @staticmethod
    def _write(path: Path, options: dict[str, Any]) -> None:
        import yaml

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(options))


def _wait_ready(master_config: str, timeout: float, minion_ids: list[str], sync: bool) -> None:
    import salt.client
    import salt.config

    from omserver.backends.saltstack import MODULE, install_module

    opts = salt.config.client_config(master_config)
    client = salt.client.LocalClient(mopts=opts)
    pending = set(minion_ids)

    def answered() -> bool:
        try:
            # Generous per-ask waits: on a busy machine a minion that is up may take
            # seconds to fork the answer, and a 1 s wait would never see it.
            replies = client.cmd(
                sorted(pending), "test.ping", timeout=10, tgt_type="list", gather_job_timeout=10
            )
        except Exception:  # the master's sockets may not be up yet
            return False
        pending.difference_update(m for m, ok in replies.items() if ok is True)
        return not pending

    wait_for(answered, timeout, f"salt minions {sorted(pending)}", interval=0.2)
    if sync:
        install_module(Path(opts["file_roots"]["base"][0]))
        synced = client.cmd(minion_ids, "saltutil.sync_modules", timeout=timeout, tgt_type="list")
        if sorted(synced) != sorted(minion_ids) or not all(
            f"modules.{MODULE}" in modules for modules in synced.values()
        ):
            raise SystemExit(f"{MODULE} not synced to every minion: {synced}")


if __name__ == "__main__" and sys.argv[1:2] in (["wait"], ["sync"]):
    _wait_ready(sys.argv[2], float(sys.argv[3]), sys.argv[4:], sys.argv[1] == "sync")
elif __name__ == "__main__":
    started = time.monotonic()
    with SaltLab() as lab:
        print(f"ready in {time.monotonic() - started:.1f} s:", lab.master_config, lab.minion_ids)
        print(
            lab.client().cmd(
                lab.minion_ids,
                "cmd.run_all",
                kwarg={"cmd": ["id", "-u"], "python_shell": False},
                tgt_type="list",
                full_return=True,
            )
        )
