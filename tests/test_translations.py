"""Simplified Chinese is complete, and the compiled catalogues match their sources."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest

from omserver.config import BASE_DIR

LOCALE = BASE_DIR / "omserverweb" / "locale" / "zh_Hans" / "LC_MESSAGES"
ENTRY = re.compile(
    r'^msgid ((?:".*"\n)+)(?:msgid_plural ((?:".*"\n)+))?msgstr(?:\[0\])? ((?:".*"\n)+)', re.M
)


def _text(block: str) -> str:
    raw = "".join(re.findall(r'"(.*)"', block))
    return raw.encode().decode("unicode_escape").encode("latin-1").decode()


def entries(po: Path) -> list[tuple[str, str, str]]:
    """(msgid, msgid_plural or "", msgstr) for every entry but the header."""
    return [
        (_text(msgid), _text(plural), _text(msgstr))
        for msgid, plural, msgstr in ENTRY.findall(po.read_text())
        if _text(msgid)
    ]


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_every_string_is_translated(domain: str) -> None:
    missing = [msgid for msgid, _, msgstr in entries(LOCALE / f"{domain}.po") if not msgstr]
    assert missing == []
    assert "#, fuzzy" not in (LOCALE / f"{domain}.po").read_text()


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_the_compiled_catalogue_is_up_to_date(domain: str) -> None:
    with (LOCALE / f"{domain}.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for msgid, plural, msgstr in entries(LOCALE / f"{domain}.po"):
        got = compiled.ngettext(msgid, plural, 2) if plural else compiled.gettext(msgid)
        assert got == msgstr, f"run compilemessages ({msgid!r})"
