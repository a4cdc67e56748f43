"""Every URL the project serves, walked as an anonymous user, as a user with no
grants and as an administrator: nothing leaks, nothing breaks, and every answer
carries the strict Content-Security-Policy and is never stored by a cache."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from omserverweb.audit.models import CommandEvent
from omserverweb.jobs.models import Job, JobHost, JobStep
from tests.conftest import logged_in
from tests.security_headers import problems

SECRET = "SECRET-OUTPUT-7f3a"
MARKERS = ("lab-minion-1", "bbs-01", SECRET, "tail -n 1 /root/.ssh")


def walk(resolvers=None, prefix: str = ""):
    """(route, pattern) for every URL pattern, with its full route."""
    for entry in resolvers if resolvers is not None else get_resolver().url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from walk(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route, entry


def concrete(route: str, ids: dict[str, str]) -> str | None:
    """A real path for a route, its parameters filled with existing ids."""
    path = route.replace("\\.(?P<format>[a-z0-9]+)/?", ".json")
    for name, value in ids.items():
        for form in (
            f"(?P<{name}>[^/.]+)",
            f"(?P<{name}>.+)",
            f"<int:{name}>",
            f"<path:{name}>",
            f"<{name}>",
        ):
            path = path.replace(form, value)
    path = path.replace("^", "").replace("$", "").replace("\\Z", "")
    if "<" in path or "(?" in path or "[" in path:
        return None
    return "/" + path.replace("\\", "")


@pytest.fixture
def everything(alice, inventory) -> dict[str, str]:
    job = Job.objects.create(
        module_id=1003,
        requested_by="alice",
        client="web",
        targets=["lab-minion-1"],
        status="succeeded",
        last_seq=2,
    )
    JobHost.objects.create(job=job, host="lab-minion-1", status="ok", seq=1)
    JobStep.objects.create(
        job=job, host="lab-minion-1", number=1, status="ok", stdout=SECRET, seq=2
    )
    event = CommandEvent.objects.create(
        host="bbs-01",
        user="root",
        command="tail -n 1 /root/.ssh",
        event_time="2026-11-21T00:00:00Z",
        seq=1,
    )
    return {
        "pk": str(job.pk),
        "object_id": str(inventory.bbs_server.pk),
        "id": str(event.pk),
        "app_label": "inventory",
        "content_type_id": "1",
        "uidb64": "MQ",
        "token": "set-password",
    }


def paths(ids: dict[str, str]) -> list[str]:
    found = {concrete(route, ids) for route, _ in walk()}
    return sorted(p for p in found if p and "static" not in p)


def test_the_walk_covers_the_console_and_api(everything) -> None:
    walked = paths(everything)
    for expected in (
        "/",
        "/jobs/",
        f"/jobs/{everything['pk']}/",
        "/modules/",
        "/api/jobs/",
        f"/api/jobs/{everything['pk']}/results/",
        "/inventory/import/",
    ):
        assert expected in walked
    assert len(walked) > 60


def test_anonymous_users_get_no_data_and_no_errors(everything) -> None:
    client = Client()
    for path in paths(everything):
        for method in (client.get, client.post):
            response = method(path)
            assert response.status_code < 500, path
            if response.status_code == 200:
                body = response.content.decode(errors="replace")
                assert not any(m in body for m in MARKERS), path
            else:
                assert response.status_code in {301, 302, 400, 401, 403, 404, 405}, (
                    path,
                    response.status_code,
                )


def test_a_user_without_grants_gets_no_data_and_no_errors(everything, charlie) -> None:
    client = logged_in(charlie)
    for path in paths(everything):
        response = client.get(path)
        assert response.status_code < 500, path
        body = response.content.decode(errors="replace")
        assert not any(m in body for m in MARKERS), path


def text(response) -> str:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return body.decode(errors="replace")


def test_every_answer_has_the_strict_policy_and_is_never_stored(everything, alice) -> None:
    anonymous, admin = Client(), logged_in(alice)
    found = []
    for path in paths(everything):
        for response in (
            anonymous.get(path),
            anonymous.post(path),
            admin.get(path),
            admin.get(path, HTTP_ACCEPT="text/html"),  # the API's browsable pages too
        ):
            found += problems(path, response.headers, text(response))
    assert found == []
