"""Pytest fixtures over the lab parts (real Salt, real sshd) and daemons on them.

``backend_lab`` runs a test once per backend: Salt (marked ``salt``) and
Ansible over SSH (marked ``ssh``); each parameter starts only its own lab.
``lab_daemon`` does the same with a real daemon on that lab, recording into
the test database, for each test module that uses it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from omserver.config import BASE_DIR, Config
from omserver.sdk import Target
from tests.daemon_process import RunningDaemon, running_daemon
from tests.lab.salt import SaltLab
from tests.lab.service import LabService
from tests.lab.sshd import SshLab


@pytest.fixture(scope="session")
def salt_lab() -> Iterator[SaltLab]:
    with SaltLab() as lab:
        yield lab


@pytest.fixture(scope="session")
def ssh_lab() -> Iterator[SshLab]:
    with SshLab() as lab:
        yield lab


@pytest.fixture
def lab_service() -> Iterator[LabService]:
    with LabService() as service:
        yield service


@dataclass
class BackendLab:
    """One backend's real targets and the settings that reach them."""

    backend: str
    targets: list[Target]
    env: dict[str, str]
    files_dir: Path  # where ctx.copy sources live (Salt file_roots / ansible.files_dir)
    lab: SaltLab | SshLab
    folder: Path

    def config(self, modules: dict[int, dict[str, Any]] | None = None, **env: str) -> Config:
        """Settings for this lab, with ``[module.<id>]`` tables and extra OMSERVER_* values."""
        file = self.folder / "omserver.toml"
        file.write_text(
            "".join(
                f"[module.{module_id}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in table.items())
                for module_id, table in (modules or {}).items()
            )
        )
        return Config({**self.env, **env}, file=file)

    def stop_host(self, name: str) -> None:
        if isinstance(self.lab, SaltLab):
            self.lab.stop_minion(name)
        else:
            self.lab.stop_target(name)

    def start_host(self, name: str) -> None:
        if isinstance(self.lab, SaltLab):
            self.lab.start_minion(name)
        else:
            self.lab.start_target(name)


@pytest.fixture(
    params=[
        pytest.param("saltstack", marks=pytest.mark.salt),
        pytest.param("ansible", marks=pytest.mark.ssh),
    ]
)
def backend_lab(request: pytest.FixtureRequest, tmp_path: Path) -> BackendLab:
    if request.param == "saltstack":
        salt: SaltLab = request.getfixturevalue("salt_lab")
        return BackendLab(
            "saltstack", salt.targets, salt.settings(), salt.file_roots, salt, tmp_path
        )
    ssh: SshLab = request.getfixturevalue("ssh_lab")
    return BackendLab("ansible", ssh.targets, ssh.settings(), ssh.files_dir, ssh, tmp_path)


ENGINE_MODULES = Path(__file__).resolve().parents[1] / "engine_modules"


def modules_folder(root: Path) -> Path:
    """The shipped modules plus the engine's test modules (sleep, exclusive, fail-on)."""
    folder = root / "modules"
    shutil.copytree(BASE_DIR / "modules", folder)
    shutil.copytree(ENGINE_MODULES, folder, dirs_exist_ok=True)
    return folder


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("saltstack", marks=pytest.mark.salt),
        pytest.param("ansible", marks=pytest.mark.ssh),
    ],
)
def lab_daemon(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, test_database_url
) -> Iterator[tuple[RunningDaemon, list[dict]]]:
    """A daemon on one backend's lab, with its targets as clients send them."""
    lab = request.getfixturevalue("salt_lab" if request.param == "saltstack" else "ssh_lab")
    root = tmp_path_factory.mktemp(f"daemon-{request.param}")
    env = {
        **lab.settings(),
        "OMSERVER_DAEMON_MODULES_DIR": str(modules_folder(root)),
        "OMSERVER_DAEMON_NAME": f"zone-{request.param}",
        "OMSERVER_DAEMON_WORKERS": "4",
    }
    with running_daemon(root / "var", env, database_url=test_database_url) as daemon:
        yield daemon, [t.to_dict() for t in lab.targets]


def _toml(value: Any) -> str:
    """TOML for the plain values tests put in module tables (no None)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")
