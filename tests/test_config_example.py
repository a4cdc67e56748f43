"""The shipped example configuration documents every setting and loads as-is."""

from __future__ import annotations

import re

from omserver.config import BASE_DIR, SETTINGS, Config

EXAMPLE = BASE_DIR / "deploy" / "omserver.example.toml"


def test_example_names_every_setting() -> None:
    text = EXAMPLE.read_text()
    sections = dict.fromkeys(name.split(".")[0] for name in SETTINGS)
    for section in sections:
        assert f"[{section}]" in text, section
    for name in SETTINGS:
        key = name.split(".", 1)[1]
        assert re.search(rf"^#? ?{re.escape(key)} = ", text, re.M), f"{name} is not documented"


def test_example_loads_with_all_keys_enabled(tmp_path) -> None:
    """Uncommenting every line yields a valid file: no typo hides in a comment."""
    enabled = re.sub(r"^# (\w+ = )", r"\1", EXAMPLE.read_text(), flags=re.M)
    file = tmp_path / "omserver.toml"
    file.write_text(enabled)
    config = Config({}, file=file)
    assert config["daemon.address"] == "127.0.0.1:11511"
