"""A queued job's order, sealed for the record, so that the queue survives a restart.

The record keeps parameters masked; a queued job must keep them as given until
it runs. So while it waits, its order (module, targets, parameters, timeout,
rollout) is kept beside it sealed with AES-GCM under the daemon's queue key, a
file in its data folder that daemons sharing a queue share. The record drops the
order once the job runs.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "queue.key"
NONCE_BYTES = 12
PURPOSE = b"omserver queued order"  # associated data: a sealed order opens only as one


class OrderError(ValueError):
    """A sealed order this daemon cannot open (another key, or damaged)."""


def queue_cipher(data_dir: Path) -> AESGCM:
    """The daemon's queue key, made on first use (readable by its owner only)."""
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another daemon of the same folder made it meanwhile
            pass
        else:
            with os.fdopen(fd, "wb") as file:
                file.write(AESGCM.generate_key(bit_length=256))
    return AESGCM(path.read_bytes())


def seal(cipher: AESGCM, order: dict[str, Any]) -> str:
    """``order`` as text for the record."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = cipher.encrypt(nonce, json.dumps(order).encode(), PURPOSE)
    return base64.b64encode(nonce + sealed).decode()


def open_sealed(cipher: AESGCM, text: str) -> dict[str, Any]:
    try:
        raw = base64.b64decode(text, validate=True)
        return json.loads(cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], PURPOSE))
    except (ValueError, InvalidTag) as exc:
        raise OrderError("its queued order cannot be opened with this daemon's queue key") from exc
