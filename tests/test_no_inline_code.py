"""The web's templates hold no inline code or style: the Content-Security-Policy runs
only the site's own static files, so inline script, handlers and style would be
refused in the browser. This keeps them from coming back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from omserver.config import BASE_DIR

TEMPLATES = sorted((BASE_DIR / "omserverweb").glob("**/templates/**/*.html"))
STATIC_CODE = sorted((BASE_DIR / "omserverweb").glob("**/static/**/*.js"))
TAG = re.compile(r"<[a-zA-Z][^>]*>", re.DOTALL)
FORBIDDEN_IN_TEMPLATES = {
    "an inline <script> (give it a src in /static/)": re.compile(
        r"<script\b(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE
    ),
    "a <style> element (move it to a .css file)": re.compile(r"<style\b", re.IGNORECASE),
    "a javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}
FORBIDDEN_IN_TAGS = {
    "an inline event handler (use addEventListener)": re.compile(r"\son[a-z]+\s*=", re.I),
    "a style attribute (use a class)": re.compile(r"\sstyle\s*=", re.IGNORECASE),
}
FORBIDDEN_IN_CODE = {
    "code from a string": re.compile(r"\beval\(|\bnew Function\(|setTimeout\(\s*[\"'`]"),
    "an inline handler or style set as an attribute": re.compile(
        r"setAttribute\(\s*[\"'](on[a-z]+|style)[\"']"
    ),
}


def inline_code(template: str) -> list[str]:
    """What in ``template`` the policy would refuse, one line each."""
    found = [
        f"{why}: {match.group(0)[:80]}"
        for why, pattern in FORBIDDEN_IN_TEMPLATES.items()
        for match in pattern.finditer(template)
    ]
    for tag in TAG.finditer(template):
        found += [
            f"{why}: {tag.group(0)[:80]}"
            for why, pattern in FORBIDDEN_IN_TAGS.items()
            if pattern.search(tag.group(0))
        ]
    return found


def test_the_scan_sees_what_the_policy_refuses() -> None:
    assert len(inline_code("<script>alert(1)</script>")) == 1
    assert len(inline_code('<script type="module">import "./x.js";</script>')) == 1
    assert len(inline_code('<select name="l" onchange="this.form.submit()">')) == 1
    assert len(inline_code('<form method="post"\n  style="display:inline">')) == 1
    assert len(inline_code("<style>p { color: red }</style>")) == 1
    assert len(inline_code('<a href="javascript:go()">')) == 1
    assert (
        inline_code('<script type="module" src="{% static \'console/console.js\' %}"></script>')
        == []
    )
    assert inline_code('<p data-style="x" class="inline">only text: onclick= style=</p>') == []


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: str(path.relative_to(BASE_DIR)))
def test_templates_hold_no_inline_code_or_style(template: Path) -> None:
    assert inline_code(template.read_text()) == []


@pytest.mark.parametrize("code", STATIC_CODE, ids=lambda path: str(path.relative_to(BASE_DIR)))
def test_scripts_make_no_code_or_inline_handlers_from_strings(code: Path) -> None:
    text = code.read_text()
    assert [why for why, pattern in FORBIDDEN_IN_CODE.items() if pattern.search(text)] == []


def test_the_scan_covers_every_template() -> None:
    assert len(TEMPLATES) >= 15
    assert BASE_DIR / "omserverweb" / "templates" / "base.html" in TEMPLATES
