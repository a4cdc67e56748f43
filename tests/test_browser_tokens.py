"""In headless Chromium: charlie makes an API token on his profile page, uses it against the
live server's REST API, and revokes it, under the console's Content-Security-Policy."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import Page, expect

from tests.test_browser import browser, csp_violations, log_in, page  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


def api_status(base_url: str, token: str) -> int:
    request = urllib.request.Request(
        f"{base_url}/api/jobs/", headers={"Authorization": f"Token {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_user_makes_uses_and_revokes_a_token_from_the_page(
    page: Page,  # noqa: F811
    live_server,
    charlie,
    daemon_down: str,
) -> None:
    log_in(page, "charlie", "charlie-password-1")
    page.locator("header").get_by_role("link", name="API tokens").click()
    expect(page).to_have_url(re.compile(r"/accounts/tokens/$"))
    page.get_by_label("Name").fill("nightly report")
    page.get_by_label("Expires after").select_option(label="7 days")
    page.get_by_role("button", name="Create token").click()
    clear = page.locator("#token-value").inner_text().strip()
    assert api_status(live_server.url, clear) == 200

    page.get_by_role("link", name="Back to the tokens").click()
    row = page.locator("#api-tokens tbody tr", has_text="nightly report")
    expect(row).to_contain_text(clear[:8])
    expect(row).to_contain_text("active")
    assert clear not in page.content()
    row.get_by_role("button", name="Revoke").click()
    expect(row).to_contain_text("revoked")
    assert api_status(live_server.url, clear) == 401
