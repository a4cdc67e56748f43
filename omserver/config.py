"""One configuration source for the web side and the daemon.

Every setting has a dotted name (``database.url``) that maps to a TOML key in
the file named by ``OMSERVER_CONFIG`` and to an environment variable
(``OMSERVER_DATABASE_URL``); the environment wins. Unknown keys and values of
the wrong type fail at start-up with a :class:`ConfigError` that names the
setting, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omserver.vocabulary import BACKENDS

BASE_DIR = Path(__file__).resolve().parent.parent
ENV_PREFIX = "OMSERVER_"


class ConfigError(ValueError):
    """A setting is missing, unknown or malformed; the message names it."""


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"expected a whole number, got {raw!r}")
    return int(raw)


def _float(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError(f"expected a number, got {raw!r}")
    return float(raw)


def _str(raw: Any) -> str:
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise ValueError(f"expected a string, got {raw!r}")
    return str(raw)


def _list(raw: Any) -> list[str]:
    if isinstance(raw, list):
        return [str(item) for item in raw]
    return [item.strip() for item in str(raw).split(",") if item.strip()]


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        value = str(raw).strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse


@dataclass(frozen=True)
class Setting:
    parse: Callable[[Any], Any]
    default: Any
    help: str


SETTINGS: dict[str, Setting] = {
    # Where runtime state lives: SQLite database, generated secret, key file.
    "paths.data_dir": Setting(_str, str(BASE_DIR / "var"), "folder for runtime state"),
    "web.secret_key": Setting(_str, "", "Django secret; generated into data_dir when empty"),
    "web.debug": Setting(_bool, False, "Django debug pages (never in production)"),
    "web.allowed_hosts": Setting(_list, ["127.0.0.1", "localhost"], "host names served"),
    "web.https": Setting(_bool, False, "served over HTTPS by the front proxy"),
    "web.confirm_above_hosts": Setting(_int, 10, "ask to confirm a run on more hosts"),
    "web.max_json_depth": Setting(_int, 32, "deepest JSON nesting accepted in a request"),
    "web.max_body_bytes": Setting(
        _int, 1024 * 1024, "largest request body (REST API, console forms)"
    ),
    "web.max_import_bytes": Setting(_int, 2 * 1024 * 1024, "largest inventory import (its data)"),
    "web.login_failure_limit": Setting(_int, 5, "wrong passwords before a login is locked"),
    "web.login_cooloff_minutes": Setting(
        _float, 15.0, "how long a lockout lasts (and the window failures count in)"
    ),
    "web.login_lockout_by": Setting(
        _choice("user_or_address", "user", "address", "user_and_address"),
        "user_or_address",
        "what failures are counted against",
    ),
    "database.url": Setting(_str, "", "database URL; empty = SQLite in data_dir"),
    "daemon.address": Setting(_str, "127.0.0.1:11511", "host:port of the daemon"),
    "daemon.name": Setting(
        _str, "default", "this daemon's name (its zone); daemons of one name share a queue"
    ),
    "daemon.client_id": Setting(_str, "web", "the web console's client id"),
    "daemon.client_key": Setting(_str, "", "the web console's client key"),
    "daemon.key_file": Setting(_str, "", "client keys file; empty = data_dir/clients.json"),
    "daemon.backend": Setting(_choice(*BACKENDS), "ansible", "execution backend"),
    "daemon.modules_dir": Setting(_str, str(BASE_DIR / "modules"), "where Mid_<id>.py live"),
    "daemon.workers": Setting(_int, 8, "jobs run at once"),
    "daemon.job_timeout": Setting(_float, 300.0, "default per-job timeout, seconds"),
    "daemon.clock_skew": Setting(_float, 60.0, "accepted frame timestamp skew, seconds"),
    "daemon.max_frame_bytes": Setting(_int, 4 * 1024 * 1024, "largest accepted frame"),
    "daemon.max_connections": Setting(_int, 256, "client connections served at once"),
    "daemon.max_connections_per_address": Setting(
        _int, 64, "connections one client address may hold (below max_connections)"
    ),
    "daemon.max_unauthenticated": Setting(
        _int, 32, "connections yet to send a valid frame; a new one closes the oldest"
    ),
    "daemon.handshake_timeout": Setting(
        _float, 5.0, "seconds a new connection has to send a valid frame"
    ),
    "daemon.frame_timeout": Setting(_float, 20.0, "seconds one packet may take to arrive"),
    "daemon.idle_timeout": Setting(
        _float, 300.0, "seconds before an idle client connection is closed (clients reconnect)"
    ),
    "daemon.shutdown_grace": Setting(_float, 30.0, "SIGTERM grace for running jobs, s"),
    "daemon.log_level": Setting(_choice("debug", "info", "warning", "error"), "info", "log"),
    "audit.retention_days": Setting(_int, 365, "days of shell history kept (audit_prune)"),
    "audit.chain_key_file": Setting(
        _str, "", "keys of the audit and job hash chains; empty = data_dir/chain-keys.json"
    ),
    "audit.checkpoint_file": Setting(
        _str, "", "heads saved by audit_verify --checkpoint; empty = data_dir/chain-checkpoint.json"
    ),
    "audit.max_batch_bytes": Setting(_int, 4 * 1024 * 1024, "largest shell-history batch"),
    "modules.output_limit": Setting(_int, 1024 * 1024, "bytes of output kept per step and host"),
    "modules.live_output": Setting(_bool, True, "show steps' output while they run"),
    "salt.master_config": Setting(_str, "/etc/salt/master", "salt-master config file"),
    "salt.gather_job_timeout": Setting(_float, 10.0, "Salt's gather_job_timeout, seconds"),
    "salt.file_roots": Setting(_str, "/srv/salt", "folder served as salt://"),
    "salt.timeout": Setting(_float, 5.0, "seconds before Salt asks a silent minion if it is busy"),
    "ansible.forks": Setting(_int, 10, "parallel hosts per Ansible run"),
    "ansible.connection": Setting(_choice("ssh", "local"), "ssh", "how Ansible reaches hosts"),
    "ansible.private_key_file": Setting(_str, "", "SSH key for Ansible; empty = agent"),
    "ansible.known_hosts_file": Setting(_str, "", "known_hosts for host key checks; empty = ssh's"),
    "ansible.connect_timeout": Setting(_int, 10, "SSH connection timeout, seconds"),
    "ansible.python_interpreter": Setting(_str, "/usr/bin/python3", "Python on the hosts"),
    "ansible.files_dir": Setting(_str, str(BASE_DIR / "var" / "files"), "source for copies"),
}


def env_name(name: str) -> str:
    """``daemon.address`` -> ``OMSERVER_DAEMON_ADDRESS``."""
    return ENV_PREFIX + name.replace(".", "_").upper()


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and name not in SETTINGS:
            if name.startswith("module."):
                flat[name] = dict(value)  # free-form per-module settings
            else:
                flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


class Config:
    """Resolved settings: environment over file over defaults."""

    def __init__(
        self, environ: Mapping[str, str] | None = None, file: str | Path | None = None
    ) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        path = file or self._environ.get(ENV_PREFIX + "CONFIG")
        self.file = Path(path) if path else None
        self._file_values = self._read_file(self.file) if self.file else {}
        self._values = {name: self._resolve(name, spec) for name, spec in SETTINGS.items()}

    @staticmethod
    def _read_file(path: Path) -> dict[str, Any]:
        try:
            with path.open("rb") as handle:
                values = _flatten(tomllib.load(handle))
        except FileNotFoundError as exc:
            raise ConfigError(f"{ENV_PREFIX}CONFIG: no such file {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{ENV_PREFIX}CONFIG: {path} is not valid TOML: {exc}") from exc
        unknown = sorted(k for k in values if k not in SETTINGS and not k.startswith("module."))
        if unknown:
            raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}")
        return values

    def _resolve(self, name: str, spec: Setting) -> Any:
        env = env_name(name)
        if env in self._environ:
            raw = self._environ[env]
        elif name in self._file_values:
            raw = self._file_values[name]
        else:
            return spec.default
        try:
            return spec.parse(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{self.origin(name)}: {exc}") from exc

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    @property
    def data_dir(self) -> Path:
        return Path(self["paths.data_dir"])

    def module_settings(self, module_id: int) -> dict[str, Any]:
        """Free-form ``[module.<id>]`` table, for module authors' own knobs."""
        return dict(self._file_values.get(f"module.{module_id}", {}))

    def origin(self, name: str) -> str:
        """Where a setting's value came from (or can be set), for error messages."""
        env = env_name(name)
        if env not in self._environ and name in self._file_values:
            return f"{name} in {self.file}"
        return env


def load(environ: Mapping[str, str] | None = None) -> Config:
    return Config(environ)
