"""Request bodies are bounded: JSON nested deeper than web.max_json_depth is a 400 and a
body larger than its endpoint takes is a 413, each naming the limit; nothing is recorded
and nothing answers 500 — on the REST API, the console's forms and the audit ingest."""

from __future__ import annotations

import http.client
import json
import ssl

import pytest
from django.test import Client
from rest_framework.test import APIClient

from omserverweb.audit import tokens
from omserverweb.audit.models import CommandEvent
from omserverweb.inventory.models import Server
from omserverweb.jobs.models import Job
from omserverweb.modules.models import ModuleDefinition
from tests.conftest import WWW_HOSTS, logged_in

DEPTHS = [33, 1_000, 100_000]  # past the limit (32), past Python's decoder, far past it
TOO_DEEP = "nested deeper than 32 levels"
MIB = 1024 * 1024


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# -- the REST API -----------------------------------------------------------------------


@pytest.mark.parametrize("depth", DEPTHS)
def test_a_run_with_params_nested_too_deep_is_a_400_naming_the_limit(bob, depth) -> None:
    body = (
        f'{{"module": 1001, "servers": ["{WWW_HOSTS[0]}"], "params": {{"lines": {nested(depth)}}}}}'
    )
    response = api(bob).post("/api/jobs/", body, content_type="application/json")
    assert response.status_code == 400
    assert TOO_DEEP in response.json()["detail"]
    assert not Job.objects.exists()


def test_json_up_to_the_limit_reaches_validation(bob) -> None:
    # the body, "params" and "lines" are 3 levels: 29 more make 32
    body = f'{{"module": 1001, "servers": ["{WWW_HOSTS[0]}"], "params": {{"lines": {nested(29)}}}}}'
    response = api(bob).post("/api/jobs/", body, content_type="application/json")
    assert response.status_code == 400
    assert "params.lines" in response.json()


def test_the_depth_limit_is_a_setting(bob, settings) -> None:
    settings.MAX_JSON_DEPTH = 2
    body = {"module": 1001, "servers": [WWW_HOSTS[0]], "params": {"lines": [5]}}
    response = api(bob).post("/api/jobs/", body, format="json")
    assert response.status_code == 400
    assert "nested deeper than 2 levels" in response.json()["detail"]


def test_a_module_schema_nested_too_deep_is_a_400(alice) -> None:
    body = f'{{"params_schema": {nested(1_000)}}}'
    response = api(alice).patch("/api/modules/1001/", body, content_type="application/json")
    assert response.status_code == 400
    assert TOO_DEEP in response.json()["detail"]


@pytest.mark.parametrize("url", ["/api/jobs/", "/api/servers/"])
def test_a_body_over_the_api_limit_is_a_413_naming_it(bob, alice, url) -> None:
    body = json.dumps({"module": 1001, "servers": [WWW_HOSTS[0]], "notes": "x" * MIB})
    response = api(alice).post(url, body, content_type="application/json")
    assert response.status_code == 413
    assert "larger than 1.0\xa0MB (1048576 bytes)" in response.json()["detail"]
    assert not Job.objects.exists()
    assert Server.objects.count() == 3


def test_the_size_limit_is_a_setting(bob, settings) -> None:
    settings.MAX_BODY_BYTES = 100
    body = {"module": 1001, "servers": [WWW_HOSTS[0]], "params": {"lines": 5, "x": "y" * 100}}
    response = api(bob).post("/api/jobs/", body, format="json")
    assert response.status_code == 413
    assert "(100 bytes)" in response.json()["detail"]


# -- the console's forms --------------------------------------------------------------------


@pytest.mark.parametrize("depth", DEPTHS)
def test_a_module_schema_nested_too_deep_is_a_form_error(alice, depth) -> None:
    form = {"id": 2001, "name": "x", "backends": ["ansible"], "params_schema": nested(depth)}
    response = logged_in(alice).post("/modules/add/", form)
    assert response.status_code == 200
    assert TOO_DEEP in response.content.decode()
    assert not ModuleDefinition.objects.filter(pk=2001).exists()


def test_the_admin_refuses_a_schema_nested_too_deep(alice) -> None:
    """On the add form: an existing module's schema is its file's, read-only."""
    form = {
        "id": 2002,
        "name": "x",
        "caption": "x",
        "backends": '["ansible"]',
        "params_schema": nested(1_000),
    }
    response = logged_in(alice).post("/admin/modules/moduledefinition/add/", form)
    assert response.status_code == 200
    assert TOO_DEEP in response.content.decode()
    assert not ModuleDefinition.objects.filter(pk=2002).exists()


def test_a_form_over_the_limit_is_a_413(alice) -> None:
    form = {"id": 2001, "name": "x", "backends": ["ansible"], "params_schema": "[]" * MIB}
    response = logged_in(alice).post("/modules/add/", form)
    assert response.status_code == 413
    assert "larger than 1.0\xa0MB" in response.content.decode()
    assert not ModuleDefinition.objects.filter(pk=2001).exists()


@pytest.mark.parametrize("depth", DEPTHS)
def test_a_salt_import_nested_too_deep_is_refused(alice, depth) -> None:
    text = f'{{"minions": ["m1"], "x": {nested(depth)}}}'
    response = logged_in(alice).post("/inventory/import/", {"source": "salt", "text": text})
    assert response.status_code == 200
    assert TOO_DEEP in response.content.decode()


@pytest.mark.parametrize("depth", [33, 900])
def test_an_ansible_import_nested_too_deep_is_refused(alice, depth) -> None:
    text = f"all:\n  hosts:\n    h1:\n      ansible_host: 10.0.0.1\n      x: {nested(depth)}\n"
    response = logged_in(alice).post("/inventory/import/", {"source": "ansible", "text": text})
    assert response.status_code == 200
    assert "YAML nested deeper than 32 levels" in response.content.decode()


def test_an_import_request_over_its_limit_is_a_413(alice) -> None:
    # the page takes 3 * 2 MiB + 64 KiB (form encoding); the data itself at most 2 MiB
    text = "h,10.0.0.1\n" * (6 * MIB // 11 + 7_000)
    response = logged_in(alice).post("/inventory/import/", {"source": "csv", "text": text})
    assert response.status_code == 413
    assert "(6356992 bytes)" in response.content.decode()
    assert not Server.objects.filter(hostname="h").exists()


# -- the audit ingest ------------------------------------------------------------------------


@pytest.fixture
def host_token(inventory) -> str:
    return tokens.issue("bbs-01", "alice", server=inventory.bbs_server)[1]


def ingest(token: str, body: str | bytes):
    return Client().post(
        "/api/audit/events/",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def audit_event(seq: int, **extra) -> dict:
    return {
        "host": "bbs-01",
        "user": "root",
        "command": f"echo {seq}",
        "time": "2026-11-21T10:00:00+00:00",
        "seq": seq,
        **extra,
    }


@pytest.mark.parametrize("depth", DEPTHS)
def test_an_audit_batch_nested_too_deep_is_a_400(host_token, depth) -> None:
    body = '{"events": [' + json.dumps(audit_event(1))[:-1] + f', "cwd": {nested(depth)}}}]}}'
    response = ingest(host_token, body)
    assert response.status_code == 400
    assert TOO_DEEP in response.json()["error"]
    assert not CommandEvent.objects.exists()


def test_an_audit_batch_over_its_limit_is_a_413(host_token) -> None:
    events = [audit_event(n, command="x" * 16_000) for n in range(1, 300)]
    body = json.dumps({"events": events})
    assert len(body) > 4 * MIB
    response = ingest(host_token, body)
    assert response.status_code == 413
    assert "larger than 4.0\xa0MB (4194304 bytes)" in response.json()["detail"]
    assert not CommandEvent.objects.exists()


def test_an_audit_batch_under_its_limit_but_over_the_api_limit_is_taken(host_token) -> None:
    events = [audit_event(n, command="x" * 16_000) for n in range(1, 100)]
    body = json.dumps({"events": events})
    assert MIB < len(body) < 4 * MIB
    assert ingest(host_token, body).status_code == 200
    assert CommandEvent.objects.count() == 99


# -- through uWSGI and nginx, as deployed --------------------------------------------------


def post_through(stack, path: str, body: str, headers: dict[str, str]) -> tuple[int, dict]:
    """A raw body through nginx (TLS) to uWSGI; the status and the JSON answer."""
    from tests.test_deploy_stack import SERVER_NAME

    context = ssl.create_default_context(cafile=stack.ca_file)
    conn = http.client.HTTPSConnection("127.0.0.1", stack.ports.https, context=context, timeout=60)
    try:
        conn.request("POST", path, body=body.encode(), headers={"Host": SERVER_NAME, **headers})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_uwsgi_answers_deep_and_large_bodies_with_400_and_413(
    deployed_web, transactional_db, inventory
) -> None:
    stack = deployed_web
    token = tokens.issue("bbs-01", "alice", server=inventory.bbs_server)[1]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for depth in (1_000, 100_000):
        body = '{"events": [' + json.dumps(audit_event(1))[:-1] + f', "cwd": {nested(depth)}}}]}}'
        status, answer = post_through(stack, "/api/audit/events/", body, headers)
        assert status == 400, answer
        assert TOO_DEEP in answer["error"]
    big = json.dumps({"events": [audit_event(n, command="x" * 16_000) for n in range(1, 300)]})
    status, answer = post_through(stack, "/api/audit/events/", big, headers)
    assert status == 413
    assert "4194304 bytes" in answer["detail"]
    assert not CommandEvent.objects.exists()
    assert "HTTP/1.1 500" not in stack.log()
