"""What a job runs on (``Target``) and what each step gives back from a host (``HostResult``)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from omserver.vocabulary import HostStatus

HOSTNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
SSH_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Target:
    """One managed host: ``hostname`` is its Salt minion id, the rest is how SSH reaches it."""

    hostname: str
    lan_ip: str
    ssh_port: int = 22
    ssh_user: str = "root"

    def __post_init__(self) -> None:
        # Values reach Salt targeting and Ansible inventories: accept only plain names.
        if not isinstance(self.hostname, str) or not HOSTNAME.fullmatch(self.hostname):
            raise ValueError(f"hostname {self.hostname!r}: letters, digits, '.', '-', '_' only")
        ipaddress.ip_address(self.lan_ip)  # raises ValueError naming the value
        port = self.ssh_port
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"ssh_port {port!r}: a port number 1-65535")
        if not isinstance(self.ssh_user, str) or not SSH_USER.fullmatch(self.ssh_user):
            raise ValueError(f"ssh_user {self.ssh_user!r}: letters, digits, '.', '-', '_' only")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class HostResult:
    """One host's outcome of one step.

    A backend fills in what the host returned; ``ctx`` adds which step it was:
    ``step`` (numbered 1, 2, … in the order the module runs them), ``action``
    (what ran, sensitive values masked) and ``started`` (epoch seconds).
    """

    host: str
    status: str
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    truncated: bool = False
    step: int = 0
    action: str = ""
    started: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in HostStatus.__members__.values():
            raise ValueError(f"status {self.status!r} is not one of {', '.join(HostStatus)}")

    @property
    def ok(self) -> bool:
        return self.status == HostStatus.OK

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostResult:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def cap_output(text: str, limit: int) -> tuple[str, bool]:
    """Keep at most ``limit`` UTF-8 bytes of ``text``; True when something was cut.

    Only the first ``limit`` characters are ever encoded, so a huge output is
    never copied whole a second time.
    """
    if len(text) <= limit // 4:  # even 4-byte characters fit: no need to measure
        return text, False
    head = text[:limit].encode("utf-8", "replace")
    if len(head) <= limit and len(text) <= limit:
        return text, False
    return head[:limit].decode("utf-8", "ignore"), True
