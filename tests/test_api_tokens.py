"""A user's own API tokens: made on the profile page, shown once, stored hashed, good
against the REST API until they expire or are revoked, and nobody else's to see or revoke."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from rest_framework.test import APIClient

from omserverweb.apitokens import services
from omserverweb.apitokens.models import ApiToken
from tests.conftest import logged_in

PAGE = "/accounts/tokens/"
TOKEN_SHOWN = re.compile(r'id="token-value">([^<]+)<')


def create_on_page(web, name: str = "ci script", expires: str = "30") -> str:
    """Create a token through the page's form; the clear token the answer shows."""
    response = web.post(PAGE, {"name": name, "expires": expires})
    assert response.status_code == 200
    return TOKEN_SHOWN.search(response.content.decode()).group(1)


def api_jobs(token: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get("/api/jobs/")


def test_a_token_made_on_the_page_is_shown_once_and_works_against_the_api(charlie) -> None:
    web = logged_in(charlie)
    assert 'href="/accounts/tokens/"' in web.get("/jobs/").content.decode()  # the header's link
    clear = create_on_page(web)
    assert clear.startswith(services.TOKEN_PREFIX)
    listed = web.get(PAGE).content.decode()
    assert clear not in listed
    assert f"{clear[: services.PREFIX_SHOWN]}…" in listed
    assert "ci script" in listed
    response = api_jobs(clear)
    assert response.status_code == 200
    assert response.wsgi_request.user == charlie


def test_the_token_is_stored_as_a_hash_only(charlie) -> None:
    clear = create_on_page(logged_in(charlie))
    token = ApiToken.objects.get(user=charlie)
    assert token.digest == hashlib.sha256(clear.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM apitokens_apitoken")
        stored = repr(cursor.fetchall())
    assert clear not in stored
    assert clear[services.PREFIX_SHOWN :] not in stored


def test_the_chosen_expiry_is_kept_and_never_is_allowed(charlie) -> None:
    web = logged_in(charlie)
    before = timezone.now()
    create_on_page(web, "month", "30")
    create_on_page(web, "forever", "")
    month = ApiToken.objects.get(name="month")
    assert before + timedelta(days=30) <= month.expires_at <= timezone.now() + timedelta(days=30)
    assert ApiToken.objects.get(name="forever").expires_at is None


def test_an_expired_token_gets_401(charlie) -> None:
    clear = create_on_page(logged_in(charlie), expires="7")
    assert api_jobs(clear).status_code == 200
    ApiToken.objects.filter(user=charlie).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api_jobs(clear)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "expired" in logged_in(charlie).get(PAGE).content.decode()


def test_a_token_revoked_on_the_page_gets_401(charlie) -> None:
    web = logged_in(charlie)
    clear = create_on_page(web)
    assert api_jobs(clear).status_code == 200
    token = ApiToken.objects.get(user=charlie)
    response = web.post(f"{PAGE}{token.pk}/revoke/", follow=True)
    assert response.redirect_chain == [(PAGE, 302)]
    assert "revoked" in response.content.decode()
    assert api_jobs(clear).status_code == 401


def test_last_used_is_noted_at_most_once_a_minute(charlie) -> None:
    clear = create_on_page(logged_in(charlie))
    token = ApiToken.objects.get(user=charlie)
    assert token.last_used_at is None
    api_jobs(clear)
    token.refresh_from_db()
    assert timezone.now() - token.last_used_at < timedelta(seconds=30)
    recent = timezone.now() - timedelta(seconds=30)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=recent)
    api_jobs(clear)
    token.refresh_from_db()
    assert token.last_used_at == recent  # within the minute: not written again
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=recent - timedelta(minutes=1))
    api_jobs(clear)
    token.refresh_from_db()
    assert token.last_used_at > recent


def test_another_user_s_token_is_as_missing_as_one_that_never_existed(bob, charlie) -> None:
    bobs, clear = services.issue(bob, "bob's deploy")
    web = logged_in(charlie)
    assert web.post(f"{PAGE}{bobs.pk}/revoke/").status_code == 404
    assert web.post(f"{PAGE}{bobs.pk + 1000}/revoke/").status_code == 404
    bobs.refresh_from_db()
    assert bobs.revoked_at is None
    assert api_jobs(clear).status_code == 200


def test_the_page_lists_only_the_user_s_own_tokens(bob, charlie) -> None:
    services.issue(bob, "bob's deploy")
    services.issue(charlie, "charlie's report")
    page = logged_in(charlie).get(PAGE).content.decode()
    assert "charlie&#x27;s report" in page
    assert "bob" not in page.split("<main>")[1]


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"name": "", "expires": "30"}, "This field is required."),
        ({"name": "x", "expires": "12"}, "Select a valid choice."),
        ({"name": "x" * 101, "expires": "30"}, "at most 100 characters"),
    ],
)
def test_a_bad_form_is_said_and_creates_nothing(charlie, form: dict, error: str) -> None:
    response = logged_in(charlie).post(PAGE, form)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not ApiToken.objects.exists()


def test_the_page_needs_a_login_and_revoke_needs_a_post(charlie) -> None:
    token, _ = services.issue(charlie, "x")
    assert APIClient().get(PAGE).status_code == 302
    assert APIClient().post(f"{PAGE}{token.pk}/revoke/").status_code == 302
    assert logged_in(charlie).get(f"{PAGE}{token.pk}/revoke/").status_code == 405


def test_an_inactive_user_s_token_gets_401(charlie) -> None:
    _, clear = services.issue(charlie, "x")
    charlie.is_active = False
    charlie.save()
    assert api_jobs(clear).status_code == 401


# -- tokens made before: DRF's authtoken table ---------------------------------------------

FROM_DRF = ("apitokens", "0002_from_drf_tokens")
OLD_KEY = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.django_db(transaction=True)
def test_a_drf_token_made_before_keeps_working_and_its_clear_table_is_dropped(charlie) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("apitokens", "0001_api_tokens")])
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE authtoken_token ({quote('key')} varchar(40) PRIMARY KEY,"
            " created datetime(6) NOT NULL, user_id integer NOT NULL)"
        )
        cursor.execute(
            f"INSERT INTO authtoken_token ({quote('key')}, created, user_id) VALUES (%s, %s, %s)",
            [OLD_KEY, "2026-01-02 03:04:05", charlie.pk],
        )
    MigrationRecorder(connection).record_applied("authtoken", "0001_initial")
    MigrationExecutor(connection).migrate([FROM_DRF])
    assert "authtoken_token" not in connection.introspection.table_names()
    assert not MigrationRecorder(connection).migration_qs.filter(app="authtoken").exists()
    migrated = ApiToken.objects.get(user=charlie)
    assert (migrated.prefix, migrated.expires_at) == (OLD_KEY[:8], None)
    assert migrated.created_at.isoformat() == "2026-01-02T03:04:05+00:00"
    assert api_jobs(OLD_KEY).status_code == 200
