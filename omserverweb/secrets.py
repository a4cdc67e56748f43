"""The web's secret key (generated once for the embedded default, kept outside git),
and secrets the web stores in its database sealed with it."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from omserver.files import write_private


def load_or_create_secret_key(path: Path) -> str:
    """Read the key at ``path``, creating it (mode 0600) on first start."""
    if not path.exists():
        write_private(path, secrets.token_urlsafe(50) + "\n", keep_existing=True)
    return path.read_text().strip()


def _fernet() -> Fernet:
    """A key of its own, derived from the secret key (which signs sessions, too)."""
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"omserver stored secrets"
    ).derive(settings.SECRET_KEY.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode() if secret else ""


def open_sealed(token: str) -> str:
    """The secret, or "" when there is none or the secret key it was sealed with is gone."""
    try:
        return _fernet().decrypt(token.encode()).decode() if token else ""
    except InvalidToken:
        return ""
