"""A private MariaDB server for fault tests: theirs to kill, restart and stop.

The shared test MariaDB (``make test-db``) must never go down under other tests,
so a test that kills the database gets its own ``mariadbd``: a fresh datadir in
a temp folder, on a free loopback port, in its own process group. The platform's
database and user are made by ``sql/create_database.py``, as in production.
Usable outside pytest::

    with PrivateMariaDB() as server:
        migrate(server.url)
        server.kill()   # SIGKILL, as a crash would
        server.start()  # InnoDB recovers what was committed
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType, TracebackType
from urllib.parse import unquote, urlsplit

import MySQLdb
import pytest

from omserver.config import BASE_DIR
from omserver.modules.metadata import LoadedModule
from tests.lab.procs import free_port, port_open, spawn, stop, wait_for
from tests.records import enabled_row, tested_modules

HOST = "127.0.0.1"

# Small enough to start in ~0.1 s and take ~20 MB on disk; durability settings stay
# at their defaults (flush the log at each commit), which is what a kill -9 tests.
SERVER_OPTIONS = (
    "--innodb-buffer-pool-size=16M",
    "--innodb-log-file-size=4M",
    "--innodb-autoextend-increment=4",
    "--skip-log-bin",
    "--performance-schema=OFF",
    "--skip-name-resolve",
    "--open-files-limit=1024",
    "--max-connections=100",
)


def _binary(*names: str) -> str:
    """The first of ``names`` on PATH or in /usr/sbin (not on a normal user's PATH)."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
        if found:
            return found
    raise RuntimeError(
        f"{names[0]} is missing: install mariadb-server (deploy/system-packages test)"
    )


def _create_database_script() -> ModuleType:
    """sql/create_database.py, which is a script and not a package."""
    path = BASE_DIR / "sql" / "create_database.py"
    spec = importlib.util.spec_from_file_location("omserver_sql_create_database", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class PrivateMariaDB:
    """One ``mariadbd`` with database ``name`` (plus ``test_<name>`` grants) for ``user``.

    ``url`` is an ``OMSERVER_DATABASE_URL``: ``mysql://user:password@127.0.0.1:port/name``.
    Root has no password and reaches the server over ``socket`` (``admin()``).
    """

    def __init__(self, name: str = "omserver", user: str = "omserver") -> None:
        self.name, self.user = name, user
        self.port = free_port(HOST)
        # A short path of our own: a unix socket path must fit in 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="omserver-mariadb-"))
        self.datadir = self.root / "data"
        self.socket = self.root / "mariadbd.sock"
        self.log_path = self.root / "mariadbd.log"
        self.url = ""
        self.process: subprocess.Popen | None = None
        self._os_user = pwd.getpwuid(os.geteuid()).pw_name

    # -- life cycle ---------------------------------------------------------------------

    def __enter__(self) -> PrivateMariaDB:
        try:
            self._install()
            self.start()
            self.url = _create_database_script().create(
                f"mysql://root@{HOST}:{self.port}/",
                self.name,
                self.user,
                self.root / "database.url",
                test_grants=True,
            )
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server (SIGKILL if it will not stop) and remove its folder."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _install(self) -> None:
        """A fresh datadir; root may log in without a password (no unix-socket auth)."""
        argv = [
            _binary("mariadb-install-db", "mysql_install_db"),
            "--no-defaults",
            f"--user={self._os_user}",
            f"--datadir={self.datadir}",
            "--skip-test-db",
            "--auth-root-authentication-method=normal",
            *SERVER_OPTIONS,
        ]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed:\n{result.stdout}{result.stderr}")

    def start(self, timeout: float = 30) -> None:
        """Start on the same datadir and port; return once it answers queries."""
        if self.running:
            return
        argv = [
            _binary("mariadbd", "mysqld"),
            "--no-defaults",
            f"--user={self._os_user}",
            f"--datadir={self.datadir}",
            f"--socket={self.socket}",
            f"--pid-file={self.root / 'mariadbd.pid'}",
            f"--log-error={self.log_path}",
            f"--port={self.port}",
            f"--bind-address={HOST}",
            *SERVER_OPTIONS,
        ]
        self.process = proc = spawn(argv, self.root / "mariadbd.out")
        wait_for(
            lambda: proc.poll() is not None or self._answers(), timeout, "mariadbd", interval=0.02
        )
        if proc.poll() is not None:
            raise RuntimeError(f"mariadbd exited with {proc.returncode}:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), SIGKILL after 20 s."""
        stop(self.process, grace=20)
        self._wait_closed()

    def kill(self) -> None:
        """SIGKILL mariadbd, as a crash would; return once its port is closed."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(10)
        self._wait_closed()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- use ----------------------------------------------------------------------------

    def connect(self, **options) -> MySQLdb.Connection:
        """A plain connection as the platform's user, over TCP like the platform's."""
        parts = urlsplit(self.url)
        return MySQLdb.connect(
            host=HOST,
            port=self.port,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            database=self.name,
            charset="utf8mb4",
            **{"connect_timeout": 5, **options},
        )

    def admin(self) -> MySQLdb.Connection:
        """Root over the unix socket, for what the platform's user may not do."""
        return MySQLdb.connect(unix_socket=str(self.socket), user="root", connect_timeout=2)

    def enable_module(self, *modules: LoadedModule) -> None:
        """Enable modules in this server's record, as an operator's review would."""
        enable_modules(self.url, modules)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _answers(self) -> bool:
        try:
            self.admin().close()
        except MySQLdb.OperationalError:
            return False
        return True

    def _wait_closed(self) -> None:
        wait_for(lambda: not port_open(HOST, self.port), 10, f"port {self.port} closing")


def enable_modules(url: str, modules: Iterable[LoadedModule]) -> None:
    """Enable ``modules`` in the MariaDB at ``url`` (as ``tests.records.approve`` does in
    the suite's database; this process's Django is bound to that one)."""
    parts = urlsplit(url)
    conn = MySQLdb.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=parts.path.lstrip("/"),
        charset="utf8mb4",
        connect_timeout=5,
    )
    with conn, conn.cursor() as cursor:
        for module in modules:
            row = {
                **enabled_row(module),
                "id": module.id,
                "enabled_at": datetime.now(UTC).replace(tzinfo=None),
            }
            for key in ("backends", "params_schema", "file_schema"):
                row[key] = json.dumps(row[key])
            columns = ", ".join(f"`{c}`" for c in row)
            updates = ", ".join(f"`{c}` = VALUES(`{c}`)" for c in row if c != "id")
            cursor.execute(
                f"INSERT INTO modules_moduledefinition ({columns}, created_at, updated_at) "
                f"VALUES ({', '.join(['%s'] * len(row))}, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6)) "
                f"ON DUPLICATE KEY UPDATE {updates}",
                list(row.values()),
            )
        conn.commit()


def migrate(url: str, data_dir: Path | None = None) -> None:
    """Apply the project's migrations to ``url`` as an operator would (``manage.py migrate``),
    and enable the modules the tests run (``tests.records.tested_modules``).

    A separate process, because this process's Django is bound to the suite's database.
    ``data_dir`` takes the settings' secret key file (a temp folder by default).
    """
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OMSERVER_CONFIG", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    with tempfile.TemporaryDirectory(prefix="omserver-migrate-") as scratch:
        environ["OMSERVER_DATABASE_URL"] = url
        environ["OMSERVER_PATHS_DATA_DIR"] = str(data_dir or scratch)
        result = subprocess.run(
            [sys.executable, str(BASE_DIR / "manage.py"), "migrate", "--noinput", "-v0"],
            env=environ,
            capture_output=True,
            text=True,
            timeout=300,
        )
    if result.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{result.stdout}{result.stderr}")
    enable_modules(url, tested_modules())


@pytest.fixture
def private_mariadb() -> Iterator[PrivateMariaDB]:
    """A running private MariaDB with an empty ``omserver`` database (``migrate`` it)."""
    with PrivateMariaDB() as server:
        yield server
