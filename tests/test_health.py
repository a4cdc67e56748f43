"""``GET /healthz``: what a load balancer or a monitor reads, anonymous, bounded in time."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from django.db import connections
from django.test import Client as WebClient

from omserverweb import health

EVERYTHING_UP = {"status": "ok", "database": "ok", "daemon": "ok", "zones": {"default": "ok"}}
DEFAULT_DOWN = {"daemon": "unreachable", "zones": {"default": "unreachable"}}


def probe() -> tuple[int, dict]:
    response = WebClient().get("/healthz")
    assert response["Content-Type"] == "application/json"
    return response.status_code, response.json()


@pytest.mark.salt
def test_it_works(web_daemon) -> None:
    assert probe() == (200, EVERYTHING_UP)


def test_a_daemon_down_is_degraded_but_still_200(db, daemon_down) -> None:
    """The console still shows pages and history: keep it in the load balancer."""
    assert probe() == (200, {"status": "degraded", "database": "ok", **DEFAULT_DOWN})


def test_a_database_down_is_503(db, daemon_down, monkeypatch, tmp_path, free_port) -> None:
    settings_dict = connections["default"].settings_dict
    if settings_dict["ENGINE"].endswith("sqlite3"):
        monkeypatch.setitem(settings_dict, "NAME", str(tmp_path / "gone" / "omserver.sqlite3"))
    else:
        monkeypatch.setitem(settings_dict, "PORT", str(free_port))
    assert probe() == (503, {"status": "down", "database": "unreachable", **DEFAULT_DOWN})


def test_anonymous_callers_learn_nothing_else(db, daemon_down) -> None:
    response = WebClient().get("/healthz")
    assert set(response.json()) == {"status", "database", "daemon", "zones"}
    assert daemon_down.split(":")[1] not in response.content.decode()
    assert "Set-Cookie" not in response
    assert "no-cache" in response["Cache-Control"]


def test_it_only_answers_reads(db, daemon_down) -> None:
    assert WebClient().head("/healthz").status_code == 200
    assert WebClient().post("/healthz").status_code == 405


@pytest.fixture
def silent_daemon(settings) -> Iterator[str]:
    """A port that accepts connections and never answers: a hung daemon."""
    from omserver.protocol.wire import new_key

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        settings.DAEMON_ADDRESS = f"127.0.0.1:{listener.getsockname()[1]}"
        settings.DAEMON_CLIENT_KEY = new_key()
        yield settings.DAEMON_ADDRESS


def test_a_hung_daemon_costs_the_probe_its_timeout_only(db, silent_daemon) -> None:
    started = time.monotonic()
    assert probe()[1]["daemon"] == "unreachable"
    assert time.monotonic() - started < health.TIMEOUT + 1.5


def test_a_daemon_key_that_is_not_one_is_a_daemon_not_answering(db, daemon_down, settings) -> None:
    settings.DAEMON_CLIENT_KEY = "not-a-key"
    assert probe() == (200, {"status": "degraded", "database": "ok", **DEFAULT_DOWN})


def test_a_daemon_says_whether_it_is_degraded_and_an_older_one_is_taken_as_ok() -> None:
    from omserverweb.endpoints import Endpoint, ZoneHealth

    zone = Endpoint("dc2", "127.0.0.1:1", "web", "k")
    older = ZoneHealth(zone, {"version": "1", "backend": "saltstack", "modules": 3})
    assert (older.state, older.problems) == ("ok", [])
    said = {"status": "degraded", "problems": ["the database is unreachable: gone"]}
    degraded = ZoneHealth(zone, {"version": "2", "health": said})
    assert (degraded.state, degraded.problems) == ("degraded", said["problems"])
    assert ZoneHealth(zone, error="down").state == "unreachable"
