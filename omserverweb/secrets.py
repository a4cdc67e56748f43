"""The embedded default's secret key: generated once, kept outside git."""

from __future__ import annotations

import secrets
from pathlib import Path

from omserver.files import write_private


def load_or_create_secret_key(path: Path) -> str:
    """Read the key at ``path``, creating it (mode 0600) on first start."""
    if not path.exists():
        write_private(path, secrets.token_urlsafe(50) + "\n")
    return path.read_text().strip()
