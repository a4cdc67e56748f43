"""Zones: several daemons, each beside its own salt-master; one job across them.

Zone dc1 is the shared web-test daemon on the session's Salt lab (lab-minion-1/2);
zone dc2 is a daemon of its own beside a second salt-master with one minion.
The web's default daemon is down throughout, so nothing can quietly run there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client as WebClient

from omserver.client import InvalidRequest
from omserverweb.inventory.models import Server, Zone
from omserverweb.jobs.models import Job, JobHost, JobPart
from tests.conftest import WWW_HOSTS, logged_in
from tests.daemon_process import RunningDaemon, running_daemon
from tests.lab.fixtures import modules_folder
from tests.lab.procs import free_port, stop, wait_for
from tests.lab.salt import SaltLab
from tests.test_api import api_as, finished

DC2_HOST = "dc2-minion-1"
ALL_HOSTS = sorted([*WWW_HOSTS, DC2_HOST])


@pytest.fixture(scope="module")
def dc2_lab() -> Iterator[SaltLab]:
    with SaltLab((DC2_HOST,)) as lab:
        yield lab


def zone_daemon(name: str, lab: SaltLab, folder: Path, database_url: str):
    """A daemon for zone ``name`` beside ``lab``'s master, with the test modules too."""
    env = {
        **lab.settings(),
        "OMSERVER_DAEMON_NAME": name,
        "OMSERVER_DAEMON_MODULES_DIR": str(modules_folder(folder)),
        "OMSERVER_SALT_TIMEOUT": "10",
        "OMSERVER_SALT_GATHER_JOB_TIMEOUT": "10",
    }
    return running_daemon(folder / "var", env, database_url=database_url)


@pytest.fixture
def dc2_daemon(dc2_lab, tmp_path: Path, test_database_url: str) -> Iterator[RunningDaemon]:
    with zone_daemon("dc2", dc2_lab, tmp_path / "dc2", test_database_url) as daemon:
        yield daemon


def register(name: str, address: str, key: str) -> Zone:
    zone = Zone(name=name, address=address, backend="saltstack")
    zone.client_key = key
    zone.save()
    return zone


@pytest.fixture
def two_zones(transactional_db, inventory, alice, daemon_down, salt_daemon_for_web, dc2_daemon):
    """dc1 = the shared web-test daemon, dc2 = its own; servers placed in each."""
    register("dc1", salt_daemon_for_web.address, salt_daemon_for_web.issued["web"])
    register("dc2", dc2_daemon.address, dc2_daemon.issued["web"])
    Server.objects.filter(hostname__in=WWW_HOSTS).update(zone="dc1")
    Server.objects.create(
        hostname=DC2_HOST, lan_ip="127.0.3.1", app_category=inventory.www, zone="dc2"
    )
    return dc2_daemon


def run(user, servers: list[str]) -> dict:
    client = api_as(user)
    response = client.post("/api/jobs/", {"module": 1003, "servers": servers}, format="json")
    assert response.status_code == 201, response.data
    return finished(client, response.data["id"])


@pytest.mark.salt
def test_one_job_across_two_zones_then_one_zone_down(two_zones, alice) -> None:
    job = run(alice, ALL_HOSTS)
    assert job["status"] == "succeeded", job
    assert sorted(r["host"] for r in job["results"]) == ALL_HOSTS
    assert all(r["status"] == "ok" and r["rc"] == 0 for r in job["results"])
    # Both daemons numbered the rows of the one job: a reader polling "after N" misses none.
    rows = api_as(alice).get(f"/api/jobs/{job['id']}/results/").data
    numbers = [row["seq"] for key in ("results", "steps") for row in rows[key]]
    assert len(numbers) == len(set(numbers)) == 6
    parts = {p["zone"]: p for p in job["parts"]}
    assert {z: (p["daemon"], p["status"], p["hosts"]) for z, p in parts.items()} == {
        "dc1": ("web-tests", "succeeded", sorted(WWW_HOSTS)),
        "dc2": ("dc2", "succeeded", [DC2_HOST]),
    }
    assert Job.objects.count() == 1  # the daemons wrote into the web's job, made none

    only_dc2 = run(alice, [DC2_HOST])
    assert (only_dc2["status"], only_dc2["parts"][0]["daemon"]) == ("succeeded", "dc2")

    stop(two_zones.process, grace=5)
    job = run(alice, ALL_HOSTS)
    assert job["status"] == "partial"
    by_host = {r["host"]: r for r in job["results"]}
    assert sorted(by_host) == ALL_HOSTS
    assert all(by_host[h]["status"] == "ok" for h in WWW_HOSTS)
    reason = f"zone dc2: master-control daemon unreachable at {two_zones.address}"
    assert by_host[DC2_HOST]["status"] == "failed"
    assert reason in by_host[DC2_HOST]["error"]
    assert reason in job["error"]
    assert {p["zone"]: p["status"] for p in job["parts"]} == {"dc1": "succeeded", "dc2": "failed"}
    page = logged_in(alice).get(f"/jobs/{job['id']}/").content.decode()
    assert reason in page


@pytest.mark.salt
def test_a_daemon_claims_its_part_once_and_only_as_asked(two_zones, alice) -> None:
    job = Job.objects.create(module_id=1003, requested_by="alice", client="web", targets=[DC2_HOST])
    part = JobPart.objects.create(job=job, zone="dc2", hosts=[DC2_HOST])
    with two_zones.client() as daemon:
        for module, hosts in (
            (1003, WWW_HOSTS[:1]),
            (1001, [DC2_HOST]),
            (1003, [DC2_HOST, *WWW_HOSTS]),
        ):
            with pytest.raises(InvalidRequest, match=f"job {job.pk} has no unclaimed part"):
                daemon.submit(module, list(hosts), job=job.pk)
        assert daemon.submit(1003, [DC2_HOST], job=job.pk) == job.pk
        assert daemon.wait(job.pk, 60)["status"] == "succeeded"
        with pytest.raises(InvalidRequest, match="no unclaimed part"):  # a claim made again
            daemon.submit(1003, [DC2_HOST], job=job.pk)
    part.refresh_from_db()
    assert (part.daemon, part.status) == ("dc2", "succeeded")
    assert JobHost.objects.get(job=job).host == DC2_HOST


@pytest.mark.salt
def test_cancel_reaches_every_zone_still_running(
    two_zones, alice, salt_lab, tmp_path: Path, test_database_url: str
) -> None:
    with zone_daemon("dc1", salt_lab, tmp_path / "dc1", test_database_url) as dc1:
        zone = Zone.objects.get(name="dc1")
        zone.address, zone.client_key = dc1.address, dc1.issued["web"]
        zone.save()
        client = api_as(alice)
        started = client.post(
            "/api/jobs/",
            {"module": 9101, "servers": ALL_HOSTS, "params": {"seconds": 120}},
            format="json",
        ).data
        # .all() queries afresh at each poll: a QuerySet iterated once keeps its rows, and
        # if the daemons had not yet marked their parts running, showed them queued for ever.
        parts = JobPart.objects.filter(job_id=started["id"]).values_list("status", flat=True)
        wait_for(lambda: set(parts.all()) == {"running"}, 30, "both zones running")
        assert client.post(f"/api/jobs/{started['id']}/cancel/").status_code == 202
        job = finished(client, started["id"])
    assert job["status"] == "cancelled"
    assert {p["zone"]: p["status"] for p in job["parts"]} == {
        "dc1": "cancelled",
        "dc2": "cancelled",
    }


def test_a_rollout_does_not_span_zones(transactional_db, inventory, alice) -> None:
    register("dc2", "127.0.0.1:9", "x" * 43 + "=")
    inventory.bbs_server.zone = "dc2"
    inventory.bbs_server.save()
    response = api_as(alice).post(
        "/api/jobs/",
        {"module": 1003, "servers": [WWW_HOSTS[0], "bbs-01"], "rollout": {"canary": 1}},
        format="json",
    )
    assert response.status_code == 400
    assert "a rollout runs within one zone" in str(response.data["rollout"])
    assert not Job.objects.exists()


@pytest.mark.salt
def test_each_zones_health_shows_in_the_console_and_the_probe(
    transactional_db, alice, daemon_down, salt_daemon_for_web
) -> None:
    register("dc1", salt_daemon_for_web.address, salt_daemon_for_web.issued["web"])
    dead = f"127.0.0.1:{free_port()}"
    register("dc2", dead, salt_daemon_for_web.issued["web"])
    page = logged_in(alice).get("/zones/").content.decode()
    dc1, dc2 = page.split('data-zone="dc1"')[1], page.split('data-zone="dc2"')[1]
    assert "status-succeeded" in dc1.split("</tr>")[0]
    assert f"zone dc2: master-control daemon unreachable at {dead}" in dc2.split("</tr>")[0]
    health = WebClient().get("/healthz").json()
    assert health == {
        "status": "degraded",
        "database": "ok",
        "daemon": "unreachable",
        "zones": {"default": "unreachable", "dc1": "ok", "dc2": "unreachable"},
    }


def test_the_zone_page_needs_a_login_and_the_view_permission(db, bob) -> None:
    assert WebClient().get("/zones/").status_code == 302
    assert logged_in(bob).get("/zones/").status_code == 403  # daemon addresses are not for all
    assert 'href="/zones/"' not in logged_in(bob).get("/jobs/").content.decode()


def test_a_zone_key_is_sealed_and_never_shown_again(db, alice) -> None:
    from omserver.protocol.wire import new_key

    key = new_key()
    admin = logged_in(alice)
    form = {"name": "dc3", "address": "10.0.0.5:11511", "client_id": "web", "backend": "ansible"}
    assert "needs its daemon" in admin.post("/admin/inventory/zone/add/", form).content.decode()
    assert (
        "not"
        in admin.post(
            "/admin/inventory/zone/add/", {**form, "client_key": "short"}
        ).content.decode()
    )
    assert admin.post("/admin/inventory/zone/add/", {**form, "client_key": key}).status_code == 302
    zone = Zone.objects.get(name="dc3")
    assert key not in zone.sealed_key and zone.client_key == key
    change = f"/admin/inventory/zone/{zone.pk}/change/"
    assert key not in admin.get(change).content.decode()
    assert admin.post(change, {**form, "address": "10.0.0.6:11511"}).status_code == 302
    zone.refresh_from_db()
    assert (zone.address, zone.client_key) == ("10.0.0.6:11511", key)


def test_a_zone_with_servers_cannot_be_deleted(db, alice, inventory) -> None:
    zone = register("dc2", "127.0.0.1:9", "k")
    Server.objects.filter(hostname="bbs-01").update(zone="dc2")
    delete = f"/admin/inventory/zone/{zone.pk}/delete/"
    assert logged_in(alice).post(delete, {"post": "yes"}).status_code == 403
    Server.objects.filter(hostname="bbs-01").update(zone="default")
    assert logged_in(alice).post(delete, {"post": "yes"}).status_code == 302
    assert not Zone.objects.exists()


def test_the_last_part_to_end_closes_the_job_and_a_restart_interrupts_its_part(
    transactional_db, inventory
) -> None:
    from omserver.sdk import HostResult as Result
    from omserverweb.jobs import recorder

    job = Job.objects.create(
        module_id=1003, requested_by="alice", client="web", targets=["a", "b", "c"]
    )
    dc1 = JobPart.objects.create(job=job, zone="dc1", hosts=["a", "b"])
    dc2 = JobPart.objects.create(job=job, zone="dc2", hosts=["c"])
    assert recorder.claim_part(job.pk, 1003, ["b", "a"], "daemon-1", "sealed") == dc1.pk
    assert recorder.claim(job.pk, dc1.pk, "daemon-1", "instance-1", []) == "ok"
    recorder.start_step(job.pk, 1, "echo fine", ["a"], 0.0)
    recorder.save_step(job.pk, Result("a", "ok", 0, "fine", step=1, action="echo fine"))
    # dc1's daemon restarts with its part unfinished; dc2's part is still being sent.
    reason = "the daemon stopped before it ended"
    assert recorder.interrupt_unfinished("daemon-1", "instance-1", reason) == 1
    job.refresh_from_db()
    assert (job.status, job.finished_at) == ("running", None)
    recorder.fail_unclaimed_part(dc2.pk, "zone dc2: master-control daemon unreachable at x")
    job.refresh_from_db()
    assert job.status == "interrupted"
    assert job.error == (
        "the daemon stopped before it ended; zone dc2: master-control daemon unreachable at x"
    )
    assert job.chain_pos is not None
    rows = {r.host: (r.status, r.error) for r in job.results.all()}
    # a: its step ended ok, but its part was interrupted before the module was done with
    # it: what the module would have done next is not known
    assert rows["a"][0] == "unknown"
    assert rows["a"][1].startswith("the job ended (interrupted) while this ran: the daemon")
    assert rows["c"] == ("failed", "zone dc2: master-control daemon unreachable at x")
    assert job.steps.get().stdout == "fine"
    recorder.finish_part(dc1.pk, "succeeded")  # a late word from a closed part changes nothing
    job.refresh_from_db()
    assert job.status == "interrupted"
    dc1.refresh_from_db()
    assert dc1.status == "interrupted"


def test_a_part_the_web_never_delivered_is_failed_by_a_daemon(
    transactional_db, inventory, tmp_path, test_database_url
) -> None:
    """A web worker killed between recording a job and sending it leaves no job queued."""
    from datetime import timedelta

    from django.utils import timezone

    job = Job.objects.create(
        module_id=1003, requested_by="bob", client="web", targets=list(WWW_HOSTS)
    )
    JobPart.objects.create(job=job, zone="default", hosts=list(WWW_HOSTS))
    fresh = Job.objects.create(module_id=1003, requested_by="bob", client="web", targets=["x"])
    JobPart.objects.create(job=fresh, zone="default", hosts=["x"])  # the web may still send it
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=6))
    with running_daemon(tmp_path / "var", {}, database_url=test_database_url):
        wait_for(lambda: Job.objects.get(pk=job.pk).status == "failed", 20, "the sweep")
    results = JobHost.objects.filter(job=job).order_by("host")
    assert [(r.host, r.status) for r in results] == [(h, "failed") for h in WWW_HOSTS]
    assert all("never" not in r.error and "handed" in r.error for r in results)
    assert Job.objects.get(pk=fresh.pk).status == "queued"
    assert JobPart.objects.get(job=fresh).daemon == ""
