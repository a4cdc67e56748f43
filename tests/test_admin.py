"""The admin serves every model to operators, and refuses what would lose data."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from omserverweb.audit.models import CommandEvent
from omserverweb.inventory.models import AppCategory, FunctionCategory, Server
from omserverweb.jobs.models import Job, JobHost, JobStep
from omserverweb.modules.models import ModuleDefinition

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    "inventory_functioncategory",
    "inventory_appcategory",
    "inventory_server",
    "modules_moduledefinition",
    "jobs_job",
    "jobs_jobhost",
    "audit_commandevent",
]


@pytest.fixture
def alice(client: Client) -> Client:
    """Alice is a superuser operator."""
    client.force_login(User.objects.create_superuser("alice", password="alice-password-1"))
    return client


@pytest.fixture
def demo() -> Job:
    function = FunctionCategory.objects.create(name="Linux.Web")
    app = AppCategory.objects.create(function=function, name="www.example.com")
    Server.objects.create(hostname="www-01", lan_ip="10.0.0.1", app_category=app)
    module = ModuleDefinition.objects.create(id=1003, name="View OS version")
    job = Job.objects.create(module=module, requested_by="alice", client="web", targets=["www-01"])
    JobHost.objects.create(job=job, host="www-01", status="ok", rc=0)
    JobStep.objects.create(job=job, host="www-01", number=1, status="ok", rc=0, stdout="Debian")
    CommandEvent.objects.create(
        host="www-01", user="root", command="uptime", event_time=timezone.now(), seq=1
    )
    return job


@pytest.mark.parametrize("name", CHANGELISTS)
def test_changelist_searches_and_filters(alice: Client, demo: Job, name: str) -> None:
    url = reverse(f"admin:{name}_changelist")
    assert alice.get(url).status_code == 200
    assert alice.get(url, {"q": "www"}).status_code == 200
    assert "0 results" in alice.get(url, {"q": "no-such-thing"}).content.decode()


def test_server_changelist_lists_operator_columns(alice: Client, demo: Job) -> None:
    page = alice.get(reverse("admin:inventory_server_changelist")).content.decode()
    for text in ("www-01", "10.0.0.1", "www.example.com"):
        assert text in page


def test_job_detail_shows_host_results(alice: Client, demo: Job) -> None:
    page = alice.get(reverse("admin:jobs_job_change", args=[demo.pk])).content.decode()
    assert "Debian" in page


def test_jobs_and_their_results_cannot_be_deleted_in_admin(alice: Client, demo: Job) -> None:
    result = demo.results.get()
    assert alice.post(reverse("admin:jobs_job_delete", args=[demo.pk])).status_code == 403
    assert alice.post(reverse("admin:jobs_jobhost_delete", args=[result.pk])).status_code == 403
    assert Job.objects.filter(pk=demo.pk).exists() and demo.results.exists()


def test_deleting_a_category_with_servers_is_refused_in_admin(alice: Client, demo: Job) -> None:
    app = AppCategory.objects.get()
    response = alice.post(
        reverse("admin:inventory_appcategory_delete", args=[app.pk]), {"post": "yes"}
    )
    assert response.status_code == 200
    assert "Cannot delete" in response.content.decode()
    assert AppCategory.objects.filter(pk=app.pk).exists()


def test_anonymous_users_are_sent_to_login(client: Client) -> None:
    response = client.get(reverse("admin:inventory_server_changelist"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_the_zone_list_counts_each_zones_servers(alice: Client, demo: Job) -> None:
    from omserver.protocol.wire import new_key
    from omserverweb.inventory.models import Zone

    for name in ("dc2", "dc3"):
        zone = Zone(name=name, address="127.0.0.1:11512", backend="saltstack")
        zone.client_key = new_key()
        zone.save()
    app = AppCategory.objects.get()
    for n in (2, 3):
        Server.objects.create(
            hostname=f"dc2-0{n}", lan_ip=f"10.0.2.{n}", app_category=app, zone="dc2"
        )
    page = alice.get(reverse("admin:inventory_zone_changelist"), {"o": "5"}).content.decode()
    counts = re.findall(r'<td class="field-server_count">(\d+)</td>', page)
    assert counts == ["0", "2"]  # ordered by the count; dc3 has none
