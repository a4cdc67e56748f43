"""Simplified Chinese is complete, and the compiled catalogues match their sources."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest

from omserver.config import BASE_DIR

LOCALE = BASE_DIR / "omserverweb" / "locale" / "zh_Hans" / "LC_MESSAGES"
ENTRY = re.compile(r'^msgid ((?:".*"\n)+)msgstr ((?:".*"\n)+)', re.M)


def entries(po: Path) -> dict[str, str]:
    def text(block: str) -> str:
        return (
            "".join(re.findall(r'"(.*)"', block))
            .encode()
            .decode("unicode_escape")
            .encode("latin-1")
            .decode()
        )

    return {text(i): text(s) for i, s in ENTRY.findall(po.read_text()) if text(i)}


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_every_string_is_translated(domain: str) -> None:
    missing = [k for k, v in entries(LOCALE / f"{domain}.po").items() if not v]
    assert missing == []


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_the_compiled_catalogue_is_up_to_date(domain: str) -> None:
    with (LOCALE / f"{domain}.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for msgid, msgstr in entries(LOCALE / f"{domain}.po").items():
        assert compiled.gettext(msgid) == msgstr, f"run compilemessages ({msgid!r})"
