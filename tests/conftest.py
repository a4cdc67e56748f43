"""Shared fixtures. The lab fixtures (real Salt, sshd) live in tests/lab/."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

from omserver.config import BASE_DIR
from omserverweb.inventory.models import AppCategory, FunctionCategory, Server

pytest_plugins = ["tests.lab.fixtures", "tests.lab.mariadb"]

PYTHON = sys.executable

# The database the settings name, read before pytest-django renames it to its test database.
CONFIGURED_DATABASE_NAME = settings.DATABASES["default"]["NAME"]
# The processes the tests start (daemons, uWSGI, manage.py) sign and check the hash
# chains with this process's chain keys, whatever data folder they are given.
os.environ.setdefault("OMSERVER_AUDIT_CHAIN_KEY_FILE", settings.AUDIT_CHAIN_KEY_FILE)


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
def test_database_url(django_db_setup: None, django_db_blocker) -> Iterator[str]:
    """The URL of the database pytest-django created, for processes the tests start.

    Tests that read what such a process wrote use ``transactional_db``.

    pytest-django creates the test database only when a collected test asks for
    database access (``db``, ``transactional_db``, ``live_server``, ``django_db``);
    a run of tests that only start a daemon (one daemon-protocol test, say) would
    hand it the configured database instead. Then it is created here.
    """
    from django.db import DEFAULT_DB_ALIAS, connection
    from django.test.utils import setup_databases, teardown_databases

    created = None
    if connection.settings_dict["NAME"] == CONFIGURED_DATABASE_NAME:
        with django_db_blocker.unblock():
            created = setup_databases(verbosity=0, interactive=False, aliases={DEFAULT_DB_ALIAS})
    db = connection.settings_dict
    assert db["NAME"] != CONFIGURED_DATABASE_NAME
    if db["ENGINE"].endswith("sqlite3"):
        yield f"sqlite:///{db['NAME']}"
    else:
        user, password = quote(db["USER"], safe=""), quote(db["PASSWORD"], safe="")
        yield f"mysql://{user}:{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    if created is not None:
        with django_db_blocker.unblock():
            teardown_databases(created, verbosity=0)


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


# -- the web side: named users, a small inventory, a daemon the console talks to ----------
#
# alice: superuser. bob: in group "web-ops", may run 1001 and 1003 on www.example.com.
# charlie: logged in, no grants at all.

WWW_HOSTS = ("lab-minion-1", "lab-minion-2")  # the Salt lab's minions (tests/lab/salt.py)


@dataclass
class Inventory:
    www: AppCategory
    bbs: AppCategory
    www_servers: list[Server]
    bbs_server: Server


@pytest.fixture
def inventory(db) -> Inventory:
    from omserver.modules.registry import ModuleRegistry
    from omserverweb.jobs.recorder import ensure_module

    for module in ModuleRegistry(BASE_DIR / "modules", "saltstack").all():
        ensure_module(module.id, module.name, module.caption, module.params, list(module.backends))
    linux_web = FunctionCategory.objects.create(name="Linux.Web")
    www = AppCategory.objects.create(function=linux_web, name="www.example.com")
    bbs = AppCategory.objects.create(function=linux_web, name="bbs.example.com")
    www_servers = [
        Server.objects.create(hostname=name, lan_ip=f"127.0.2.{n}", app_category=www)
        for n, name in enumerate(WWW_HOSTS, 1)
    ]
    bbs_server = Server.objects.create(hostname="bbs-01", lan_ip="127.0.2.9", app_category=bbs)
    return Inventory(www, bbs, www_servers, bbs_server)


def _user(username: str, **extra):
    from django.contrib.auth.models import User

    return User.objects.create_user(username, password=f"{username}-password-1", **extra)


@pytest.fixture
def alice(inventory):
    return _user("alice", is_superuser=True, is_staff=True)


@pytest.fixture
def bob(inventory):
    from django.contrib.auth.models import Group

    from omserverweb.access.models import Grant

    user = _user("bob")
    group = Group.objects.create(name="web-ops")
    user.groups.add(group)
    for module_id in (1001, 1003):
        Grant.objects.create(group=group, module_id=module_id, app_category=inventory.www)
    return user


@pytest.fixture
def charlie(inventory):
    return _user("charlie")


def logged_in(user):
    from django.test import Client as WebClient

    web = WebClient()
    web.force_login(user)
    return web


@pytest.fixture(scope="module")
def salt_daemon_for_web(salt_lab, tmp_path_factory, test_database_url):
    """A daemon on the Salt lab that records into the test database."""
    from tests.daemon_process import running_daemon

    env = {
        **salt_lab.settings(),
        "OMSERVER_DAEMON_NAME": "web-tests",
        "OMSERVER_SALT_TIMEOUT": "10",
        "OMSERVER_SALT_GATHER_JOB_TIMEOUT": "10",
    }
    with running_daemon(
        tmp_path_factory.mktemp("web-daemon"), env, database_url=test_database_url
    ) as daemon:
        yield daemon


@pytest.fixture
def web_daemon(salt_daemon_for_web, settings, transactional_db):
    """Point the web console at the running daemon, with the web's own key."""
    settings.DAEMON_ADDRESS = salt_daemon_for_web.address
    settings.DAEMON_CLIENT_ID = "web"
    settings.DAEMON_CLIENT_KEY = salt_daemon_for_web.issued["web"]
    return salt_daemon_for_web


@pytest.fixture
def daemon_down(settings, free_port):
    """The web console configured for a daemon that is not running."""
    from omserver.protocol.wire import new_key

    settings.DAEMON_ADDRESS = f"127.0.0.1:{free_port}"
    settings.DAEMON_CLIENT_KEY = new_key()
    return settings.DAEMON_ADDRESS


@pytest.fixture(scope="module")
def deployed_web(tmp_path_factory, test_database_url):
    """The shipped nginx site and uWSGI ini on loopback (tests/test_deploy_stack.py), 2 workers,
    no daemon: for what must hold on the real server, not only under Django's test client."""
    from tests.lab.procs import free_port
    from tests.test_deploy_stack import NGINX, running_stack

    if not NGINX.exists():
        pytest.skip("needs nginx (apt-get install nginx)")
    environ = {
        "OMSERVER_DAEMON_ADDRESS": f"127.0.0.1:{free_port()}",
        "OMSERVER_UWSGI_PROCESSES": "2",
    }
    with running_stack(tmp_path_factory.mktemp("stack"), test_database_url, environ) as running:
        yield running
