"""POST /api/audit/events/: token checks, validation, all-or-nothing, retries stored once."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from omserverweb.audit import tokens
from omserverweb.audit.models import CommandEvent
from omserverweb.audit.services import verify_events

URL = "/api/audit/events/"


def event(seq: int, host: str = "bbs-01", **extra) -> dict:
    return {
        "host": host,
        "user": "root",
        "source": "10.0.0.7",
        "cwd": "/root",
        "command": f"echo {seq}",
        "time": "2026-11-21T10:00:00.123456+00:00",
        "seq": seq,
        **extra,
    }


def post(token: str | None, body, client: Client | None = None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return (client or Client()).post(URL, data, content_type="application/json", **headers)


@pytest.fixture
def host_token(inventory, db) -> str:
    return tokens.issue("bbs-01", "alice", server=inventory.bbs_server)[1]


@pytest.fixture
def group_token(inventory, db) -> str:
    return tokens.issue("www", "alice", app_category=inventory.www)[1]


def test_it_stores_a_batch(host_token) -> None:
    response = post(host_token, {"events": [event(1), event(2)]})
    assert response.status_code == 200, response.content
    assert response.json() == {"received": 2, "stored": 2, "duplicates": 0}
    stored = CommandEvent.objects.get(seq=2)
    assert (stored.host, stored.user, stored.command) == ("bbs-01", "root", "echo 2")
    assert stored.event_time.isoformat() == "2026-11-21T10:00:00.123456+00:00"


def test_the_token_is_stored_hashed(host_token) -> None:
    from omserverweb.audit.models import IngestToken

    row = IngestToken.objects.get()
    assert host_token not in (row.digest, row.prefix)
    assert row.digest == tokens.digest(host_token)


@pytest.mark.parametrize("header", [None, "Bearer omat_wrong", "Token abc", "Basic Zm9vOmJhcg=="])
def test_a_missing_or_wrong_token_gets_401(host_token, header) -> None:
    headers = {"HTTP_AUTHORIZATION": header} if header else {}
    response = Client().post(
        URL, json.dumps({"events": [event(1)]}), content_type="application/json", **headers
    )
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not CommandEvent.objects.exists()


def test_a_revoked_token_gets_401(host_token) -> None:
    from omserverweb.audit.models import IngestToken

    assert post(host_token, {"events": [event(1)]}).status_code == 200
    tokens.revoke(IngestToken.objects.get())
    assert post(host_token, {"events": [event(2)]}).status_code == 401
    assert CommandEvent.objects.count() == 1


def test_it_rejects_get(host_token) -> None:
    assert Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {host_token}").status_code == 405


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        '{"events": ' + "[" * 100_000 + "]" * 100_000 + "}",  # deeper than the decoder goes
        "[]",
        {"events": []},
        {"events": "x"},
        {"events": [event(1), "x"]},
        {"events": [event(1), event(2, user="")]},
        {"events": [event(1), event(2, user="u" * 65)]},
        {"events": [event(1), event(2, command="x" * 16_385)]},
        {"events": [event(1), event(2, command="a\x00b")]},
        {"events": [event(1), event(2, time="2026-11-21 10:00:00")]},
        {"events": [event(1), event(2, time="yesterday")]},
        {"events": [event(1), event(2, time="2126-01-01T00:00:00Z")]},
        {"events": [event(1), event(2, time="1970-01-01T00:00:00Z")]},
        {"events": [event(1), {**event(2), "seq": 0}]},
        {"events": [event(1), {**event(2), "seq": "2"}]},
        {"events": [event(1), {**event(2), "seq": True}]},
        {"events": [event(1), event(2, extra="field")]},
        {"events": [event(1), event(2, host="lab-minion-1")]},  # not this token's host
        {"events": [event(n) for n in range(1, 1002)]},
    ],
)
def test_a_malformed_batch_gets_400_and_stores_nothing(host_token, body) -> None:
    response = post(host_token, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]
    assert not CommandEvent.objects.exists()


def test_an_oversize_body_gets_413(host_token) -> None:
    body = json.dumps({"events": [event(1, command="x" * 16_000)] * 300})
    assert len(body) > 4 * 1024 * 1024
    response = post(host_token, body)
    assert response.status_code == 413
    assert "larger than 4.0" in response.json()["detail"]
    assert not CommandEvent.objects.exists()


def test_the_same_sequence_sent_twice_is_stored_once(host_token) -> None:
    assert post(host_token, {"events": [event(1), event(2)]}).json()["stored"] == 2
    again = post(host_token, {"events": [event(2), event(3), event(3)]}).json()
    assert again == {"received": 3, "stored": 1, "duplicates": 2}
    assert sorted(CommandEvent.objects.values_list("seq", flat=True)) == [1, 2, 3]
    assert verify_events() == []


def test_a_group_token_covers_its_category_only(group_token, inventory) -> None:
    hosts = [s.hostname for s in inventory.www_servers]
    ok = post(group_token, {"events": [event(1, host=h) for h in hosts]})
    assert ok.json()["stored"] == 2
    assert post(group_token, {"events": [event(2, host="bbs-01")]}).status_code == 400
    assert verify_events() == []
