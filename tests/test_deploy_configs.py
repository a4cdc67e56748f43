"""The shipped deploy/ files pass their own tools' checks and hold OMServer's contracts.

CI runs these: `nginx -t` on the site, `systemd-analyze verify` on the units,
`logrotate -d` on the rotation file, and the settings OMServer relies on in the
Salt, Ansible and compose examples. (uWSGI loading the ini: test_deploy_stack.)
"""

from __future__ import annotations

import configparser
import grp
import os
import pwd
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from omserver.config import BASE_DIR, SETTINGS, Config, env_name
from tests.test_deploy_stack import NGINX, Ports, nginx_argv, nginx_config, site_config

DEPLOY = BASE_DIR / "deploy"
UNITS = DEPLOY / "systemd"
SHUTDOWN_GRACE = SETTINGS["daemon.shutdown_grace"].default
OUTPUT_LIMIT = SETTINGS["modules.output_limit"].default


def unit_settings(name: str) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit file, every value of each key in order."""
    found: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text().splitlines():
        match = re.match(r"^(\w+)=(.*)$", line)
        if match:
            found.setdefault(match[1], []).append(match[2])
    return found


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", value)
    assert match, f"not a plain duration: {value}"
    return int(match[1]) * (60 if match[2] == "min" else 1)


@pytest.mark.skipif(not NGINX.exists(), reason="needs nginx (apt-get install nginx)")
def test_nginx_accepts_the_site(tmp_path) -> None:
    site = site_config(tmp_path, Ports(80, 443, 9001), tmp_path / "static")
    result = subprocess.run(
        nginx_argv(tmp_path, nginx_config(tmp_path, site), "-t"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.mark.skipif(
    not shutil.which("systemd-analyze"),
    reason="systemd-analyze is not installed (apt-get install systemd)",
)
def test_systemd_accepts_the_units(tmp_path) -> None:
    """Installed paths swapped for this checkout's: verify checks that ExecStart exists."""
    for unit in UNITS.glob("*.service"):
        text = unit.read_text().replace("/opt/omserver/venv", sys.prefix)
        (tmp_path / unit.name).write_text(text.replace("/opt/omserver/app", str(BASE_DIR)))
    units = sorted(str(path) for path in tmp_path.glob("*.service"))
    assert len(units) == 2
    result = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "omserver" not in result.stderr, result.stderr  # no warning about our units


def test_the_daemon_unit_lets_running_jobs_finish() -> None:
    """SIGTERM to the main process only, and time enough for daemon.shutdown_grace."""
    unit = unit_settings("omserver-daemon.service")
    assert unit["KillMode"] == ["process"]  # job processes outlive a restart, to be adopted
    assert unit["KillSignal"] == ["SIGTERM"]
    assert seconds(unit["TimeoutStopSec"][0]) > SHUTDOWN_GRACE
    assert unit["ExecStart"] == ["/opt/omserver/venv/bin/omserver serve"]


@pytest.mark.parametrize("name", ["omserver-web.service", "omserver-daemon.service"])
def test_the_units_run_unprivileged_and_confined(name: str) -> None:
    unit = unit_settings(name)
    assert unit["User"] == ["omserver"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["EnvironmentFile"] == ["/etc/omserver/omserver.env"]
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert unit[key] == ["yes"], key
    assert unit["ProtectSystem"] == ["strict"]
    assert "/var/lib/omserver" in unit["ReadWritePaths"][0].split()


def test_the_web_unit_outlasts_uwsgis_own_stop() -> None:
    ini = (DEPLOY / "uwsgi.ini").read_text()
    mercy = int(re.search(r"^worker-reload-mercy = (\d+)$", ini, re.M)[1])
    assert re.search(r"^die-on-term = true$", ini, re.M)
    assert seconds(unit_settings("omserver-web.service")["TimeoutStopSec"][0]) > mercy


@pytest.mark.skipif(not shutil.which("logrotate"), reason="logrotate is not installed")
def test_logrotate_accepts_its_file(tmp_path) -> None:
    """On a temporary log folder, as this test's user (there is no omserver user here)."""
    me = f"{pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name}"
    text = (DEPLOY / "logrotate/omserver").read_text()
    (tmp_path / "web.log").write_text("a line\n")
    config = tmp_path / "omserver"
    config.write_text(
        text.replace("/var/log/omserver/", f"{tmp_path}/").replace(
            "su omserver omserver", f"su {me}"
        )
    )
    result = subprocess.run(
        ["logrotate", "--debug", "--force", "--state", str(tmp_path / "state"), str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr.lower(), result.stderr
    assert "copying" in result.stderr and "truncating" in result.stderr


def test_salt_examples_fit_omserver() -> None:
    master = yaml.safe_load((DEPLOY / "salt/master.example").read_text())
    minion = yaml.safe_load((DEPLOY / "salt/minion.example").read_text())
    assert master["auto_accept"] is False
    assert master["max_event_size"] > OUTPUT_LIMIT
    assert minion["max_event_size"] > OUTPUT_LIMIT
    assert master["file_roots"]["base"] == [SETTINGS["salt.file_roots"].default]
    assert {"interface", "worker_threads"} <= set(master)


def test_ansible_example_checks_host_keys() -> None:
    config = configparser.ConfigParser()
    config.read(DEPLOY / "ansible/ansible.cfg")
    assert config.getboolean("defaults", "host_key_checking")
    assert config.getboolean("ssh_connection", "pipelining")
    assert config["defaults"]["private_key_file"]
    assert Path(config["defaults"]["inventory"]).name == "inventory.ini"
    assert (DEPLOY / "ansible/inventory.ini").exists()


def test_compose_gives_the_daemon_its_grace() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert set(compose["services"]) == {"db", "web", "daemon"}
    daemon = compose["services"]["daemon"]
    assert daemon["command"] == ["omserver", "serve"]
    assert seconds(daemon["stop_grace_period"]) > SHUTDOWN_GRACE
    assert (DEPLOY / compose["services"]["web"]["build"]["dockerfile"].split("/")[-1]).exists()


@pytest.mark.parametrize("example", ["omserver.env.example", "omserver.compose.env.example"])
def test_the_env_examples_hold_only_settings_that_load(example: str) -> None:
    """Every variable is a known setting whose value parses: no typo waits for start-up."""
    lines = (DEPLOY / example).read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    env.pop("OMSERVER_CONFIG", None)  # a file on the target host
    config = Config(env)
    assert {env_name(name) for name in SETTINGS} >= set(env)
    assert config["daemon.client_id"] == "web"


def test_the_compose_stack_mounts_what_its_env_names_and_builds_no_secret_in() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    env = (DEPLOY / "omserver.compose.env.example").read_text()
    mounts = {v.split(":")[1] for v in compose["services"]["daemon"]["volumes"] if ":/" in v}
    key = re.search(r"^OMSERVER_ANSIBLE_PRIVATE_KEY_FILE=(.+)$", env, re.M).group(1)
    assert any(key.startswith(f"{mount}/") for mount in mounts)
    assert "OMSERVER_CONFIG" not in env  # no such file inside the container
    ignored = (BASE_DIR / ".dockerignore").read_text().splitlines()
    for secret in ("var", ".venv", ".git", "deploy/omserver.env", "deploy/.env", "deploy/ssh"):
        assert secret in ignored
