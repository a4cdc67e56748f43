"""Shared fixtures. The lab fixtures (real Salt, sshd) live in tests/lab/."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from omserver.config import BASE_DIR

pytest_plugins = ["tests.lab.fixtures"]

PYTHON = sys.executable


@pytest.fixture(scope="session")
def mysql_url() -> str:
    """The MariaDB URL `make test` created (sql/create_database.py), even on the SQLite pass."""
    url = os.environ.get("OMSERVER_TEST_MYSQL_URL")
    if not url:
        stored = BASE_DIR / "var" / "test-database.url"
        if not stored.exists():
            pytest.fail("no test MariaDB: run `make test` (or `make test-db`) first")
        url = stored.read_text().strip()
    return url


@pytest.fixture(scope="session")
def test_database_url(django_db_setup: None, django_db_blocker) -> str:
    """The URL of the database pytest-django created, for processes the tests start.

    Tests that read what such a process wrote use ``transactional_db``.
    """
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user, password = quote(db["USER"], safe=""), quote(db["PASSWORD"], safe="")
    return f"mysql://{user}:{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def manage(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run manage.py in a fresh process with extra environment, as an operator would."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        environ = {**os.environ, "OMSERVER_PATHS_DATA_DIR": str(tmp_path / "var")}
        environ.pop("OMSERVER_CONFIG", None)
        environ.update(env or {})
        return subprocess.run(
            [PYTHON, str(BASE_DIR / "manage.py"), *args],
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run
