"""Settings come from the environment or a TOML file; bad ones stop start-up by name."""

from __future__ import annotations

import re
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from omserver.config import Config, ConfigError

Manage = Callable[..., subprocess.CompletedProcess[str]]


def test_environment_overrides_file(tmp_path: Path) -> None:
    file = tmp_path / "omserver.toml"
    file.write_text('[daemon]\naddress = "127.0.0.5:1000"\nworkers = 3\n')
    config = Config({"OMSERVER_DAEMON_WORKERS": "7"}, file=file)
    assert config["daemon.address"] == "127.0.0.5:1000"
    assert config["daemon.workers"] == 7


def test_unknown_key_in_file_is_named(tmp_path: Path) -> None:
    file = tmp_path / "omserver.toml"
    file.write_text("[daemon]\nadress = '127.0.0.1:1'\n")
    with pytest.raises(ConfigError, match=r"daemon\.adress"):
        Config({}, file=file)


def test_bad_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="OMSERVER_WEB_DEBUG"):
        Config({"OMSERVER_WEB_DEBUG": "maybe"})
    with pytest.raises(ConfigError, match="OMSERVER_DAEMON_BACKEND"):
        Config({"OMSERVER_DAEMON_BACKEND": "func"})


def test_unparseable_database_url_stops_start_up(manage: Manage) -> None:
    result = manage("check", env={"OMSERVER_DATABASE_URL": "postgres://db.invalid/omserver"})
    assert result.returncode != 0
    assert "OMSERVER_DATABASE_URL" in result.stderr
    assert "unsupported database" in result.stderr


def test_unreachable_database_stops_start_up(manage: Manage, free_port: int) -> None:
    url = f"mysql://omserver:secret@127.0.0.1:{free_port}/omserver"
    result = manage("check", env={"OMSERVER_DATABASE_URL": url})
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "OMSERVER_DATABASE_URL" in output
    assert "omserver.E001" in output
    assert "secret" not in output  # the password never reaches a message


def test_wrong_mysql_password_stops_start_up(manage: Manage, mysql_url: str) -> None:
    scheme, rest = mysql_url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    bad = f"{scheme}://{creds.split(':', 1)[0]}:wrong-password@{host}"
    result = manage("check", env={"OMSERVER_DATABASE_URL": bad})
    assert result.returncode != 0
    assert "Access denied" in result.stdout + result.stderr


def test_embedded_default_generates_a_private_secret_key(manage: Manage, tmp_path: Path) -> None:
    result = manage("check", env={"OMSERVER_DATABASE_URL": ""})
    assert result.returncode == 0, result.stderr
    key_file = tmp_path / "var" / "secret_key"
    assert len(key_file.read_text().strip()) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert (tmp_path / "var" / "omserver.sqlite3").exists()  # the embedded database lives there


def test_deploy_check_leaves_only_what_nginx_handles(manage: Manage, mysql_url: str) -> None:
    """README, "Production": nginx redirects to HTTPS (W008) and sets HSTS (W004)."""
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "ERROR",
        env={
            "OMSERVER_DATABASE_URL": mysql_url,
            "OMSERVER_WEB_SECRET_KEY": "x7" * 30 + "-production-key-from-environment",
            "OMSERVER_WEB_DEBUG": "false",
            "OMSERVER_WEB_HTTPS": "true",
            "OMSERVER_WEB_ALLOWED_HOSTS": "omserver.example.com",
        },
    )
    assert result.returncode == 0, result.stderr
    assert set(re.findall(r"\((\w+\.[WE]\d+)\)", result.stderr)) == {
        "security.W004",
        "security.W008",
    }, result.stderr


def test_a_secret_created_by_two_processes_at_once_is_the_first_ones(tmp_path) -> None:
    from omserver.files import write_private

    path = tmp_path / "secret_key"
    write_private(path, "first\n", keep_existing=True)
    write_private(path, "second\n", keep_existing=True)  # lost the race: reads the first
    assert path.read_text() == "first\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no temporary left behind
