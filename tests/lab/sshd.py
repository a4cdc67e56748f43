"""Real sshd targets on distinct loopback addresses, with keys made for this run.

Each target is an ``sshd -D`` with its own host key, port and config in a temp
folder; one client key logs in as root. Sessions see ``OMLAB_HOST`` = the target's
name, so a test can make hosts behave differently. A ``known_hosts`` file lists the host
keys, so host key checking stays on. Usable outside pytest::

    with SshLab() as lab:
        print(lab.targets, lab.private_key, lab.known_hosts)
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from omserver.sdk import Target
from tests.lab.procs import free_port, port_open, spawn, stop, wait_for

SSHD = "/usr/sbin/sshd"


class SshLab:
    """One sshd per address in ``addresses`` (127.0.1.x), named ssh-1, ssh-2, …"""

    def __init__(self, addresses: tuple[str, ...] = ("127.0.1.11", "127.0.1.12")) -> None:
        if not Path(SSHD).exists():
            raise RuntimeError(f"{SSHD} is missing: apt-get install openssh-server")
        self.root = Path(tempfile.mkdtemp(prefix="omserver-sshd-"))
        self.private_key = self.root / "id_ed25519"
        self.known_hosts = self.root / "known_hosts"
        self.files_dir = self.root / "files"  # what Ansible copies from (ansible.files_dir)
        self.targets = [
            Target(hostname=f"ssh-{n}", lan_ip=address, ssh_port=free_port(address))
            for n, address in enumerate(addresses, 1)
        ]
        self._procs: dict[str, subprocess.Popen | None] = {}

    def __enter__(self) -> SshLab:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        self.files_dir.mkdir()
        _keygen(self.private_key)
        (self.root / "authorized_keys").write_text(self.private_key.with_suffix(".pub").read_text())
        known = []
        for target in self.targets:
            folder = self.root / target.hostname
            folder.mkdir()
            _keygen(folder / "host_ed25519")
            host_key = (folder / "host_ed25519.pub").read_text().split()[:2]
            known.append(f"[{target.lan_ip}]:{target.ssh_port} {' '.join(host_key)}\n")
            (folder / "sshd_config").write_text(self._config(target, folder))
            self.start_target(target.hostname, wait=False)
        self.known_hosts.write_text("".join(known))
        for target in self.targets:
            self._wait(target)

    def close(self) -> None:
        for name in list(self._procs):
            self.stop_target(name)
        shutil.rmtree(self.root, ignore_errors=True)

    def start_target(self, name: str, *, wait: bool = True) -> None:
        folder = self.root / name
        self._procs[name] = spawn(
            [SSHD, "-D", "-e", "-f", str(folder / "sshd_config")], folder / "sshd.log"
        )
        if wait:
            self._wait(self.target(name))

    def stop_target(self, name: str) -> None:
        stop(self._procs.pop(name, None), grace=0)

    def target(self, name: str) -> Target:
        return next(t for t in self.targets if t.hostname == name)

    def settings(self) -> dict[str, str]:
        """OMSERVER_* environment that points the daemon's Ansible at these targets."""
        return {
            "OMSERVER_DAEMON_BACKEND": "ansible",
            "OMSERVER_ANSIBLE_CONNECTION": "ssh",
            "OMSERVER_ANSIBLE_PRIVATE_KEY_FILE": str(self.private_key),
            "OMSERVER_ANSIBLE_KNOWN_HOSTS_FILE": str(self.known_hosts),
            "OMSERVER_ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
            "OMSERVER_ANSIBLE_FILES_DIR": str(self.files_dir),
        }

    def _wait(self, target: Target) -> None:
        wait_for(
            lambda: port_open(target.lan_ip, target.ssh_port),
            10,
            f"sshd {target.hostname}",
            interval=0.02,
        )

    def _config(self, target: Target, folder: Path) -> str:
        return "\n".join(
            [
                f"ListenAddress {target.lan_ip}:{target.ssh_port}",
                f"HostKey {folder / 'host_ed25519'}",
                f"PidFile {folder / 'sshd.pid'}",
                f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "MaxStartups 64",
                "MaxSessions 64",
                "Subsystem sftp internal-sftp",
                f"SetEnv OMLAB_HOST={target.hostname}",
                "LogLevel ERROR",
                "",
            ]
        )


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "omserver-lab", "-f", str(path)],
        check=True,
    )


if __name__ == "__main__":
    started = time.monotonic()
    with SshLab() as lab:
        print(f"ready in {time.monotonic() - started:.2f} s:", lab.targets)
        for t in lab.targets:
            print(
                subprocess.run(
                    [
                        "ssh",
                        "-i",
                        str(lab.private_key),
                        "-o",
                        f"UserKnownHostsFile={lab.known_hosts}",
                        "-o",
                        "BatchMode=yes",
                        "-p",
                        str(t.ssh_port),
                        f"root@{t.lan_ip}",
                        "hostname",
                    ],
                    capture_output=True,
                    text=True,
                )
            )
