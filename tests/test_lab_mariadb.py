"""The private MariaDB that fault tests kill: it must crash, recover and vanish on cue."""

from __future__ import annotations

from pathlib import Path

import MySQLdb
import pytest

from omserverweb.database import database_settings
from tests.lab.mariadb import PrivateMariaDB, migrate
from tests.lab.procs import port_open


def gone(server: PrivateMariaDB, pid: int) -> bool:
    """No process, nothing on the port, no folder: what a test may leave behind."""
    return (
        not Path(f"/proc/{pid}").exists()
        and not port_open("127.0.0.1", server.port)
        and not server.root.exists()
    )


def test_a_committed_row_survives_kill_9_and_a_restart_on_the_same_port() -> None:
    with PrivateMariaDB() as server:
        migrate(server.url)
        writer = server.connect()
        with writer.cursor() as cur:
            cur.execute("INSERT INTO auth_group (name) VALUES (%s)", ("survivors",))
        writer.commit()
        pid = server.process.pid

        server.kill()
        assert not server.running
        assert not port_open("127.0.0.1", server.port)
        with pytest.raises(MySQLdb.OperationalError), writer.cursor() as cur:
            cur.execute("SELECT 1")

        server.start()
        assert server.process.pid != pid
        reader = server.connect()
        with reader.cursor() as cur:
            cur.execute("SELECT name FROM auth_group")
            assert cur.fetchall() == (("survivors",),)
        reader.close()
        pid = server.process.pid
    assert gone(server, pid)


def test_a_failing_test_leaves_nothing_running() -> None:
    with pytest.raises(ZeroDivisionError), PrivateMariaDB() as server:
        pid = server.process.pid
        1 / 0  # noqa: B018
    assert gone(server, pid)


def test_the_fixture_url_is_one_the_platform_and_djangos_test_runner_can_use(
    private_mariadb: PrivateMariaDB,
) -> None:
    db = database_settings(private_mariadb.url, Path("/nonexistent"))
    assert (db["ENGINE"], db["HOST"], db["PORT"], db["NAME"]) == (
        "django.db.backends.mysql",
        "127.0.0.1",
        private_mariadb.port,
        "omserver",
    )
    with private_mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE test_omserver")  # what Django's test runner does
        cur.execute("DROP DATABASE test_omserver")
    private_mariadb.stop()
    assert not port_open("127.0.0.1", private_mariadb.port)
