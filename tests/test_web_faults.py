"""The web when a daemon restarts or hangs: nothing lost, nothing run twice, nobody waits.

The daemons here run Ansible's local connection (every host is this machine), so
the tests need no lab; they record into the test database, which the web reads.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.test import Client as WebClient

from omserverweb.endpoints import ZONE_TIMEOUT
from omserverweb.inventory.models import Server, Zone
from omserverweb.jobs.models import Job, JobHost
from tests.conftest import WWW_HOSTS, logged_in
from tests.daemon_process import RunningDaemon, running_daemon
from tests.lab.fixtures import modules_folder
from tests.lab.procs import free_port, stop, wait_for
from tests.test_api import api_as

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
