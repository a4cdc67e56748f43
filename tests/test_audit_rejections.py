"""Events ingest refuses are noted per host and shown on the audit page until a resend of
each is stored (the agent's side, retrying, is in test_audit_agent)."""

from __future__ import annotations

import pytest

from omserverweb.audit import rejections, tokens
from omserverweb.audit.models import CommandEvent, RejectedEvent
from omserverweb.inventory.models import Server
from tests.conftest import logged_in
from tests.test_audit_ingest import event, post


@pytest.fixture
def www_token(inventory) -> str:
    return tokens.issue("www agents", "alice", app_category=inventory.www)[1]


def refused_hosts(client) -> list[rejections.HostRejections]:
    return client.get("/audit/").context["rejected"]


def test_refused_events_show_on_the_audit_page_until_a_resend_is_stored(
    www_token, alice, inventory
) -> None:
    """A host not yet in the inventory: its token's category does not cover it."""
    page = logged_in(alice)
    assert refused_hosts(page) == []
    assert 'id="rejected-hosts"' not in page.get("/audit/").content.decode()
    for seq in (1, 2, 1):
        assert post(www_token, {"events": [event(seq, host="www-03")]}).status_code == 400
    [row] = refused_hosts(page)
    assert (row.host, row.events, row.token) == ("www-03", 2, "www agents")
    assert row.reason == "host 'www-03' is not covered by this token"
    assert RejectedEvent.objects.get(seq=1).attempts == 2
    html = page.get("/audit/").content.decode()
    assert 'id="rejected-hosts"' in html and "www-03" in html

    Server.objects.create(hostname="www-03", lan_ip="127.0.2.3", app_category=inventory.www)
    tokens._cache.clear()  # as after CACHE_SECONDS
    events = [event(1, host="www-03"), event(2, host="www-03")]
    assert post(www_token, {"events": events}).status_code == 200
    assert CommandEvent.objects.filter(host="www-03").count() == 2
    assert refused_hosts(page) == []


def test_only_the_refused_event_of_a_batch_is_noted(www_token, inventory) -> None:
    late = event(2, host="lab-minion-1", time="2099-01-01T00:00:00+00:00")  # a clock ahead
    response = post(www_token, {"events": [event(1, host="lab-minion-1"), late]})
    assert response.status_code == 400
    [noted] = RejectedEvent.objects.all()
    assert (noted.host, noted.seq, noted.reason) == ("lab-minion-1", 2, "time is out of range")


def test_what_names_no_event_or_comes_without_a_token_is_not_noted(www_token) -> None:
    assert post(www_token, b"not json").status_code == 400
    assert post(www_token, {"events": [{"host": "x", "seq": "one"}]}).status_code == 400
    assert post(None, {"events": [event(1, host="www-03")]}).status_code == 401
    assert post("omat_wrong", {"events": [event(1, host="www-03")]}).status_code == 401
    assert not RejectedEvent.objects.exists()


def test_a_token_cannot_fill_the_table(www_token, monkeypatch) -> None:
    monkeypatch.setattr(rejections, "MAX_PER_TOKEN", 2)
    for n in range(4):
        post(www_token, {"events": [event(1, host=f"made-up-{n}")]})
    assert RejectedEvent.objects.count() == 2
