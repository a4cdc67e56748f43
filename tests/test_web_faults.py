"""The web when a daemon restarts or hangs: nothing lost, nothing run twice, nobody waits.

The daemons here run Ansible's local connection (every host is this machine), so
the tests need no lab; they record into the test database, which the web reads.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.test import Client as WebClient

from omserver.config import BASE_DIR
from omserverweb.endpoints import ZONE_TIMEOUT
from omserverweb.inventory.models import Server, Zone
from omserverweb.jobs.models import Job, JobHost
from tests.conftest import WWW_HOSTS, logged_in
from tests.daemon_process import RunningDaemon, running_daemon
from tests.lab.fixtures import modules_folder
from tests.lab.procs import free_port, stop, wait_for
from tests.test_api import api_as
from tests.test_deploy_stack import SERVER_NAME

LOCAL = {
    "OMSERVER_DAEMON_BACKEND": "ansible",
    "OMSERVER_ANSIBLE_CONNECTION": "local",
    "OMSERVER_DAEMON_WORKERS": "8",
}
HUNG_HOST = "hung-01"


@contextmanager
def local_daemon(
    folder: Path, database_url: str, address: str, issued: dict[str, str] | None = None
) -> Iterator[RunningDaemon]:
    """A daemon on Ansible's local connection at ``address``; ``issued`` keeps its keys
    across a restart."""
    modules = folder / "modules"
    env = {
        **LOCAL,
        "OMSERVER_DAEMON_ADDRESS": address,
        "OMSERVER_DAEMON_MODULES_DIR": str(modules if modules.exists() else modules_folder(folder)),
    }
    with running_daemon(folder / "var", env, issued, database_url=database_url) as daemon:
        yield daemon


@pytest.fixture
def default_daemon(transactional_db, settings, tmp_path: Path, test_database_url: str):
    """The web's default zone: a local daemon of this test's own."""
    address = f"127.0.0.1:{free_port()}"
    with local_daemon(tmp_path / "default", test_database_url, address) as daemon:
        settings.DAEMON_ADDRESS = daemon.address
        settings.DAEMON_CLIENT_ID = "web"
        settings.DAEMON_CLIENT_KEY = daemon.issued["web"]
        yield daemon


@pytest.fixture
def hung_zone(transactional_db, inventory) -> Iterator[str]:
    """Zone "hung": a listener that accepts connections and never reads or answers."""
    from omserver.protocol.wire import new_key

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        zone = Zone(name="hung", address=address, backend="ansible")
        zone.client_key = new_key()
        zone.save()
        Server.objects.create(
            hostname=HUNG_HOST, lan_ip="127.0.4.1", app_category=inventory.www, zone="hung"
        )
        yield address


SEED = """
from django.contrib.auth.models import User
from omserverweb.apitokens.services import issue
from omserverweb.inventory.models import AppCategory, FunctionCategory, Server
function = FunctionCategory.objects.create(name="Linux.Web")
www = AppCategory.objects.create(function=function, name="www.example.com")
for n, name in enumerate(%r, 1):
    Server.objects.create(hostname=name, lan_ip=f"127.0.2.{n}", app_category=www)
user = User.objects.create_superuser("ops", password="ops-password-1")
print(issue(user, "tests")[1])
"""


def seed(database_url: str, data_dir: Path) -> str:
    """The lab's servers and a superuser "ops" in another database; its API token."""
    environ = {k: v for k, v in os.environ.items() if k != "OMSERVER_CONFIG"}
    environ.update(OMSERVER_DATABASE_URL=database_url, OMSERVER_PATHS_DATA_DIR=str(data_dir))
    done = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "shell", "-c", SEED % (WWW_HOSTS,)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def all_ended(job_ids: list[int]) -> bool:
    return not Job.objects.filter(pk__in=job_ids, status__in=["queued", "running"]).exists()


def test_submissions_right_after_a_daemon_restart_all_run_once(
    default_daemon: RunningDaemon, alice, tmp_path: Path, test_database_url: str
) -> None:
    """Each web thread keeps its connection to the daemon: after a restart every kept one
    is dead, and the next submit on it must go through, once."""
    threads = 8

    def submit(_: int) -> int:
        response = api_as(alice).post(
            "/api/jobs/", {"module": 1003, "servers": [WWW_HOSTS[0]]}, format="json"
        )
        assert response.status_code == 201, response.content
        return response.data["id"]

    with ThreadPoolExecutor(threads) as web:  # the same threads before and after
        warm = list(web.map(submit, range(threads * 2)))
        wait_for(lambda: all_ended(warm), 120, "the jobs before the restart")
        stop(default_daemon.process, grace=5)
        with local_daemon(
            tmp_path / "default",
            test_database_url,
            default_daemon.address,
            default_daemon.issued,
        ) as restarted:
            started = list(web.map(submit, range(50)))
            wait_for(lambda: all_ended(started), 300, "50 jobs after the restart")
            log = restarted.log()
    jobs = Job.objects.filter(pk__in=started)
    assert jobs.count() == 50
    assert {(j.status, j.error) for j in jobs} == {("succeeded", "")}
    assert Job.objects.count() == len(warm) + 50  # no job made twice
    for job_id in started:  # each ran once: one host row, one step
        assert JobHost.objects.filter(job_id=job_id).count() == 1
        assert Job.objects.get(pk=job_id).steps.count() == 1
    assert "Traceback" not in log


def test_a_hung_zone_costs_only_its_own_hosts(
    default_daemon: RunningDaemon, hung_zone: str, alice
) -> None:
    client = api_as(alice)
    began = time.monotonic()
    response = client.post(
        "/api/jobs/", {"module": 1003, "servers": [*WWW_HOSTS, HUNG_HOST]}, format="json"
    )
    took = time.monotonic() - began
    assert response.status_code == 201, response.content
    assert took < 1.0, f"the request that starts the job took {took:.2f} s"
    job_id = response.data["id"]

    wait_for(lambda: all_ended([job_id]), ZONE_TIMEOUT + 60, "the job")
    job = client.get(f"/api/jobs/{job_id}/").data
    assert job["status"] == "partial"
    by_host = {r["host"]: r for r in job["results"]}
    assert all(by_host[h]["status"] == "ok" for h in WWW_HOSTS)
    reason = f"zone hung: master-control daemon unreachable at {hung_zone}"
    assert by_host[HUNG_HOST]["status"] == "failed"
    assert reason in by_host[HUNG_HOST]["error"]
    assert "no answer within" in by_host[HUNG_HOST]["error"]
    assert {p["zone"]: p["status"] for p in job["parts"]} == {
        "default": "succeeded",
        "hung": "failed",
    }

    began = time.monotonic()
    page = logged_in(alice).get("/zones/")
    took_page = time.monotonic() - began
    assert page.status_code == 200
    rows = page.content.decode()
    default_row = rows.split('data-zone="default"')[1].split("</tr>")[0]
    hung_row = rows.split('data-zone="hung"')[1].split("</tr>")[0]
    assert "status-succeeded" in default_row
    assert reason in hung_row

    began = time.monotonic()
    health = WebClient().get("/healthz")
    took_health = time.monotonic() - began
    assert (health.status_code, health.json()) == (
        200,
        {
            "status": "degraded",
            "database": "ok",
            "daemon": "ok",
            "zones": {"default": "ok", "hung": "unreachable"},
        },
    )
    # Both probe every zone at once, each with its own short timeout.
    assert took_page < 4 and took_health < 4, (took_page, took_health)


def test_a_hung_default_daemon_does_not_hold_the_request(hung_zone: str, settings, alice) -> None:
    """Every part waits in the background: even the one zone of a job may hang."""
    settings.DAEMON_ADDRESS = hung_zone
    settings.DAEMON_CLIENT_KEY = Zone.objects.get(name="hung").client_key
    client = api_as(alice)
    began = time.monotonic()
    response = client.post("/api/jobs/", {"module": 1003, "servers": [WWW_HOSTS[0]]}, format="json")
    assert time.monotonic() - began < 1.0
    assert response.data["status"] == "queued"
    wait_for(lambda: all_ended([response.data["id"]]), ZONE_TIMEOUT + 60, "the part to fail")
    job = client.get(f"/api/jobs/{response.data['id']}/").data
    assert job["status"] == "failed"
    assert f"master-control daemon unreachable at {hung_zone}" in job["error"]


# -- the database down ---------------------------------------------------------------------


def log_in(stack, user: str, password: str) -> str:
    """A console session through nginx and uWSGI, as a browser gets it; its cookie header."""
    page = stack.https("GET", "/accounts/login/")
    cookies = {
        c.split(";")[0].split("=", 1)[0]: c.split(";")[0].split("=", 1)[1]
        for c in page.headers.get_all("Set-Cookie")
    }
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1)
    form = urlencode(
        {"username": user, "password": password, "csrfmiddlewaretoken": token.decode()}
    )
    done = _raw(
        stack,
        "POST",
        "/accounts/login/",
        form.encode(),
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={cookies['csrftoken']}",
            "Referer": f"https://{SERVER_NAME}/accounts/login/",
        },
    )
    assert done.status == 302, done.body
    session = next(c for c in done.headers.get_all("Set-Cookie") if c.startswith("sessionid="))
    return session.split(";")[0]


def test_the_database_down_is_a_plain_503_and_its_return_needs_no_restart(
    tmp_path: Path,
) -> None:
    from tests.lab.mariadb import PrivateMariaDB, migrate
    from tests.test_deploy_stack import running_stack

    with PrivateMariaDB() as database:
        migrate(database.url)
        token = seed(database.url, tmp_path / "seed")
        no_daemon = {"OMSERVER_DAEMON_ADDRESS": f"127.0.0.1:{free_port()}"}
        with running_stack(tmp_path / "stack", database.url, no_daemon) as stack:
            api = {"Authorization": f"Token {token}"}
            session = {"Cookie": log_in(stack, "ops", "ops-password-1")}

            def answers() -> tuple[int, int, int]:
                return (
                    stack.https("GET", "/api/jobs/", headers=api).status,
                    stack.https("GET", "/jobs/", headers=session).status,
                    stack.https("GET", "/healthz").status,
                )

            assert answers() == (200, 200, 200)

            database.kill()
            rest = stack.https("GET", "/api/jobs/", headers=api)
            assert rest.status == 503
            assert rest.headers["Content-Type"] == "application/json"
            assert json.loads(rest.body) == {
                "detail": "the database is unreachable; try again shortly",
                "down": ["database"],
            }
            posted = stack.https(
                "POST", "/api/jobs/", body={"module": 1003, "servers": ["x"]}, headers=api
            )
            assert (posted.status, json.loads(posted.body)["down"]) == (503, ["database"])
            page = stack.https("GET", "/jobs/", headers=session)
            assert page.status == 503
            assert page.headers["Content-Type"].startswith("text/html")
            text = page.body.decode()
            assert "Temporarily unavailable" in text
            assert "the database is unreachable; try again shortly" in text
            assert "Server Error" not in text and "Traceback" not in text
            health = stack.https("GET", "/healthz")
            assert (health.status, json.loads(health.body)["database"]) == (503, "unreachable")

            database.start()
            # Every uWSGI worker had a connection kept: none may answer with a dead one.
            for _ in range(24):
                assert answers() == (200, 200, 200)
            assert "Traceback" not in stack.log()


def _raw(stack, method: str, path: str, body: bytes, headers: dict[str, str]):
    """A request with a body as given (a form), through nginx like ``Stack.https``."""
    context = ssl.create_default_context(cafile=stack.ca_file)
    conn = http.client.HTTPSConnection("127.0.0.1", stack.ports.https, context=context)
    conn.timeout = 30
    conn.request(method, path, body=body, headers={"Host": SERVER_NAME, **headers})
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response


def test_a_zone_whose_daemon_says_it_is_degraded_shows_why(
    default_daemon: RunningDaemon, alice, tmp_path: Path
) -> None:
    from tests.lab.mariadb import PrivateMariaDB, migrate

    with PrivateMariaDB() as database:
        migrate(database.url)
        address = f"127.0.0.1:{free_port()}"
        with local_daemon(tmp_path / "dc9", database.url, address) as dc9:
            zone = Zone(name="dc9", address=dc9.address, backend="ansible")
            zone.client_key = dc9.issued["web"]
            zone.save()
            assert WebClient().get("/healthz").json()["zones"] == {"default": "ok", "dc9": "ok"}

            database.kill()
            with dc9.client() as client:
                wait_for(
                    lambda: client.ping()["health"]["status"] == "degraded", 60, "dc9 degraded"
                )
            health = WebClient().get("/healthz")
            assert (health.status_code, health.json()) == (
                200,
                {
                    "status": "degraded",
                    "database": "ok",
                    "daemon": "ok",
                    "zones": {"default": "ok", "dc9": "degraded"},
                },
            )
            page = logged_in(alice).get("/zones/").content.decode()
            row = page.split('data-zone="dc9"')[1].split("</tr>")[0]
            assert "status-partial" in row and "the database is unreachable" in row
