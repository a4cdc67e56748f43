"""Login throttling: the 6th try after 5 wrong passwords is refused for the cool-off,
right password or not, on the console and the admin; an administrator unlocks it."""

from __future__ import annotations

import base64
import http.client
import logging
import re
import ssl
import urllib.parse
from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from omserverweb.lockout import LOCKOUT_PARAMETERS

CONSOLE = "/accounts/login/"
ADMIN = "/admin/login/"
ATTACKER, OFFICE = "198.51.100.7", "203.0.113.20"


def client_at(address: str, **extra) -> Client:
    return Client(REMOTE_ADDR=address, **extra)


def log_in(web: Client, url: str, username: str, password: str):
    return web.post(url, {"username": username, "password": password})


def logged_in(web: Client) -> bool:
    return "_auth_user_id" in web.session


def fail_five_times(web: Client, url: str, username: str) -> list[int]:
    return [log_in(web, url, username, f"wrong-{n}").status_code for n in range(5)]


@pytest.fixture
def users(db, settings) -> dict[str, User]:
    # A fast hasher: these tests check passwords by the dozen on a busy machine.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return {
        "alice": User.objects.create_superuser("alice", password="alice-password-1"),
        "bob": User.objects.create_user("bob", password="bob-password-1"),
        "carol": User.objects.create_user("carol", password="carol-password-1"),
    }


@pytest.mark.parametrize(("url", "user"), [(CONSOLE, "bob"), (ADMIN, "alice")])
def test_five_wrong_passwords_lock_the_login_even_for_the_right_one(users, url, user) -> None:
    web = client_at(ATTACKER)
    statuses = fail_five_times(web, url, user)
    assert statuses[:4] == [200] * 4  # the form again, "didn't match"
    assert statuses[4] == 429  # the 5th failure locks

    sixth = log_in(web, url, user, f"{user}-password-1")
    assert sixth.status_code == 429
    assert not logged_in(web)
    page = sixth.content.decode()
    assert "locked until" in page and "even with the right password" in page
    assert int(sixth["Retry-After"]) > 14 * 60  # the cool-off is 15 minutes


def test_the_lockout_page_is_translated(users) -> None:
    web = client_at(ATTACKER, HTTP_ACCEPT_LANGUAGE="zh-hans")
    fail_five_times(web, CONSOLE, "bob")
    page = log_in(web, CONSOLE, "bob", "bob-password-1").content.decode()
    assert "登录已锁定" in page


def test_lockouts_are_recorded_and_logged(users, caplog) -> None:
    web = client_at(ATTACKER)
    with caplog.at_level(logging.WARNING, logger="omserverweb.lockout"):
        fail_five_times(web, CONSOLE, "bob")
        log_in(web, CONSOLE, "bob", "bob-password-1")
    failures = AccessFailureLog.objects.filter(username="bob", ip_address=ATTACKER)
    assert failures.count() == 5
    assert failures.filter(locked_out=True).count() == 1
    assert "wrong-" not in AccessAttempt.objects.get().post_data  # passwords are masked
    lines = [r.getMessage() for r in caplog.records if r.name == "omserverweb.lockout"]
    assert len(lines) == 2  # the locking failure and the refused right password
    assert all(f"user=bob address={ATTACKER}" in line for line in lines)


def test_per_user_and_per_address_by_default(users) -> None:
    fail_five_times(client_at(ATTACKER), CONSOLE, "bob")

    elsewhere = client_at(OFFICE)
    assert log_in(elsewhere, CONSOLE, "bob", "bob-password-1").status_code == 429  # the user
    same_address = client_at(ATTACKER)
    assert log_in(same_address, CONSOLE, "carol", "carol-password-1").status_code == 429
    other = client_at(OFFICE)
    assert log_in(other, CONSOLE, "carol", "carol-password-1").status_code == 302
    assert logged_in(other)


@pytest.mark.parametrize(
    ("policy", "bob_elsewhere", "carol_same_address"),
    [("user", 429, 302), ("address", 302, 429), ("user_and_address", 302, 302)],
)
def test_the_policy_decides_what_is_locked(
    users, settings, policy, bob_elsewhere, carol_same_address
) -> None:
    settings.AXES_LOCKOUT_PARAMETERS = LOCKOUT_PARAMETERS[policy]
    fail_five_times(client_at(ATTACKER), CONSOLE, "bob")
    assert log_in(client_at(OFFICE), CONSOLE, "bob", "bob-password-1").status_code == bob_elsewhere
    carol = log_in(client_at(ATTACKER), CONSOLE, "carol", "carol-password-1")
    assert carol.status_code == carol_same_address
    assert log_in(client_at(ATTACKER), CONSOLE, "bob", "bob-password-1").status_code == 429


def test_an_admin_unlocks_in_the_admin(users) -> None:
    fail_five_times(client_at(ATTACKER), CONSOLE, "bob")
    admin = Client()
    admin.force_login(users["alice"])
    attempts = list(AccessAttempt.objects.values_list("pk", flat=True))
    assert admin.get("/admin/axes/accessattempt/").status_code == 200
    response = admin.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": attempts, "post": "yes"},
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()

    web = client_at(ATTACKER)
    assert log_in(web, CONSOLE, "bob", "bob-password-1").status_code == 302
    assert logged_in(web)


def test_an_admin_unlocks_with_the_command(users) -> None:
    fail_five_times(client_at(ATTACKER), CONSOLE, "bob")
    call_command("axes_reset_username", "bob")
    call_command("axes_reset_ip", ATTACKER)
    assert log_in(client_at(ATTACKER), CONSOLE, "bob", "bob-password-1").status_code == 302


def test_the_lock_ends_after_the_cool_off(users) -> None:
    web = client_at(ATTACKER)
    fail_five_times(web, CONSOLE, "bob")
    assert log_in(web, CONSOLE, "bob", "bob-password-1").status_code == 429
    # axes' clock is the attempts' time: move it back past the 15-minute cool-off.
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=15, seconds=1)
    )
    assert log_in(web, CONSOLE, "bob", "bob-password-1").status_code == 302
    assert logged_in(web)


def test_failures_outside_the_window_do_not_add_up(users) -> None:
    web = client_at(ATTACKER)
    fail_five_times(web, CONSOLE, "bob")
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16)
    )
    statuses = [log_in(web, CONSOLE, "bob", f"wrong-{n}").status_code for n in range(4)]
    assert statuses == [200] * 4
    assert log_in(web, CONSOLE, "bob", "bob-password-1").status_code == 302


def test_right_passwords_never_lock(users) -> None:
    """Logins with the right password (the suite logs in a lot) count for nothing."""
    for _ in range(10):
        web = client_at(ATTACKER)
        assert log_in(web, CONSOLE, "bob", "bob-password-1").status_code == 302
    assert not AccessAttempt.objects.exists()


def test_the_api_takes_no_password(users) -> None:
    """No token-less password login to throttle: Basic credentials are not accepted."""
    basic = base64.b64encode(b"bob:bob-password-1").decode()
    response = client_at(ATTACKER).get("/api/servers/", HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code == 401


# -- through nginx and uWSGI, as deployed ----------------------------------------------------


def https(stack, method: str, path: str, body: str = "", headers: dict | None = None):
    """One request through nginx (TLS); the response, its body read."""
    from tests.test_deploy_stack import SERVER_NAME

    context = ssl.create_default_context(cafile=stack.ca_file)
    conn = http.client.HTTPSConnection("127.0.0.1", stack.ports.https, context=context, timeout=60)
    try:
        sent = {"Host": SERVER_NAME, "Origin": f"https://{SERVER_NAME}", **(headers or {})}
        conn.request(method, path, body=body.encode(), headers=sent)
        response = conn.getresponse()
        response.text = response.read().decode()
        return response
    finally:
        conn.close()


def test_a_forged_forwarded_address_does_not_escape_the_lock(deployed_web, transactional_db):
    """Behind nginx the address is the client's own: X-Forwarded-For changes nothing."""
    User.objects.create_user("dave", password="dave-password-1")
    page = https(deployed_web, "GET", CONSOLE)
    cookie = re.search(r"csrftoken=([^;]+)", page.getheader("Set-Cookie")).group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)

    def attempt(password: str, forged: str):
        body = urllib.parse.urlencode(
            {"username": "dave", "password": password, "csrfmiddlewaretoken": token}
        )
        headers = {
            "Cookie": f"csrftoken={cookie}",
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Forwarded-For": forged,
        }
        return https(deployed_web, "POST", CONSOLE, body, headers)

    statuses = [attempt(f"wrong-{n}", f"192.0.2.{n}").status for n in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    locked = attempt("dave-password-1", "192.0.2.99")
    assert locked.status == 429
    assert "locked until" in locked.text
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == ["127.0.0.1"]
