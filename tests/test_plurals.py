"""Counts next to nouns say "1 host" and "2 hosts", in English and in Simplified Chinese:
in the templates, in the console's scripts (Django's JavaScript catalogue) and in messages."""

from __future__ import annotations

import json
import re
import subprocess
from types import SimpleNamespace

import pytest
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.utils import translation

from omserver.config import BASE_DIR

SCRIPTS = sorted((BASE_DIR / "omserverweb").glob("*/static/*/*.js"))
NGETTEXT = re.compile(r'\bngettext\(\s*"([^"]*)",\s*"([^"]*)"')
# gettext() of a text with a count in it: the count's noun would not agree with it.
COUNT_IN_GETTEXT = re.compile(r'(?<!n)gettext\(\s*"([^"]*%\((?:n|count|total)\)s[^"]*)"')
# The catalogue served at /jsi18n/ run as the browser runs it; prints ngettext's answers.
NODE = """
const vm = require("vm");
const sandbox = {};
vm.runInNewContext(require("fs").readFileSync(0, "utf8"), sandbox);
const calls = JSON.parse(process.argv[1]);
console.log(JSON.stringify(calls.map(([one, many, n]) => sandbox.ngettext(one, many, n))));
"""


def script_plurals() -> list[tuple[str, str]]:
    return [pair for path in SCRIPTS for pair in NGETTEXT.findall(path.read_text())]


def js_ngettext(language: str, calls: list[tuple[str, str, int]]) -> list[str]:
    catalogue = Client().get("/jsi18n/", HTTP_ACCEPT_LANGUAGE=language)
    assert catalogue.status_code == 200
    done = subprocess.run(
        ["node", "-e", NODE, json.dumps(calls)],
        input=catalogue.content.decode(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def test_the_scripts_count_through_ngettext() -> None:
    counted = {
        path.name: COUNT_IN_GETTEXT.findall(path.read_text())
        for path in SCRIPTS
        if COUNT_IN_GETTEXT.search(path.read_text())
    }
    assert counted == {}
    assert ("%(n)s server selected", "%(n)s servers selected") in script_plurals()


def test_the_javascript_catalogue_agrees_in_english() -> None:
    pairs = script_plurals()
    calls = [(one, many, n) for one, many in pairs for n in (1, 2)]
    assert js_ngettext("en", calls) == [one if n == 1 else many for one, many, n in calls]


def test_the_javascript_catalogue_has_every_plural_in_chinese() -> None:
    pairs = script_plurals()
    calls = [(one, many, n) for one, many in pairs for n in (1, 2)]
    answers = js_ngettext("zh-hans", calls)
    untranslated = [call for call, answer in zip(calls, answers, strict=True) if answer in call]
    assert untranslated == []
    shown = dict(zip(calls, answers, strict=True))
    assert shown[("%(n)s server selected", "%(n)s servers selected", 1)] == "已选 %(n)s 台服务器"


def zone_page(user, modules: int) -> str:
    """The zones page with one zone whose daemon says it loaded ``modules`` modules."""
    zone = SimpleNamespace(
        endpoint=SimpleNamespace(
            zone="dc1", address="10.0.0.1:11511", is_default=False, backend=""
        ),
        answer={"version": "1.0", "modules": modules, "backend": "salt"},
        ok=True,
        state="ok",
        warnings=[],
        problems=[],
    )
    request = RequestFactory().get("/zones/")
    request.user = user
    return render_to_string("console/zone_list.html", {"rows": [(zone, 3)]}, request=request)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "one", "two"),
    [
        ("en", "version 1.0, 1 module", "version 1.0, 2 modules"),
        ("zh-hans", "版本 1.0，1 个模块", "版本 1.0，2 个模块"),  # noqa: RUF001
    ],
)
def test_the_zones_page_counts_modules(alice, language: str, one: str, two: str) -> None:
    with translation.override(language):
        assert one in zone_page(alice, 1)
        assert "1 modules" not in zone_page(alice, 1)
        assert two in zone_page(alice, 2)


@pytest.mark.django_db
def test_the_console_says_how_many_servers_are_selected(alice) -> None:
    client = Client()
    client.force_login(alice)
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<p class="muted" id="selected-count">0 servers selected</p>' in page
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "已选 0 台服务器" in page


def test_the_cli_counts_in_english() -> None:
    from omserver.cli import counted

    assert [counted(n, "host") for n in (0, 1, 2)] == ["0 hosts", "1 host", "2 hosts"]
