"""The secret keys of the hash chains: a 0600 JSON file outside the database.

A link's hash is an HMAC-SHA256 under one of these keys, named on the link by
its id, so whoever can write the database but cannot read this file cannot
make a link that verifies. Rotation adds a key and makes it current; the old
ones stay in the file, so the links they made still verify. The web and the
daemon (whose recorder links job records) read the same file; each re-reads it
when it changed, so a rotation counts from the next link without a restart.

    {"current": "<id>", "keys": {"<id>": {"key": "<base64>", "created": "<iso>"}}}
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from django.conf import settings

from omserver.files import write_private

KEY_BYTES = 32


class ChainKeyError(RuntimeError):
    """The key file is unusable; the message names the file and the fault."""


@dataclass(frozen=True)
class Keyring:
    """The keys of one reading of the file."""

    current: str
    keys: dict[str, bytes]

    def mac(self, key_id: str, body: bytes) -> str | None:
        """HMAC-SHA256 of ``body`` under key ``key_id``, or None when the file lacks it."""
        key = self.keys.get(key_id)
        return hmac.new(key, body, hashlib.sha256).hexdigest() if key is not None else None

    def sign(self, body: bytes) -> tuple[str, str]:
        """The current key's id and the HMAC-SHA256 of ``body`` under it."""
        return self.current, hmac.new(self.keys[self.current], body, hashlib.sha256).hexdigest()


def key_id(key: bytes) -> str:
    """A key's name: a fingerprint, so keys made apart (two hosts, a rotation) never share one."""
    return hashlib.sha256(b"omserver chain key " + key).hexdigest()[:12]


def _new_entry() -> tuple[str, dict[str, str]]:
    key = secrets.token_bytes(KEY_BYTES)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    return key_id(key), {"key": base64.b64encode(key).decode(), "created": created}


class KeyFile:
    """One key file; :meth:`keyring` re-reads it only when it changed (one ``stat``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._ring: Keyring | None = None

    def keyring(self) -> Keyring:
        """The keys, the file created (mode 0600, one key) on first use."""
        stamp = self._file_stamp()
        if stamp is None:
            ident, entry = _new_entry()
            text = json.dumps({"current": ident, "keys": {ident: entry}}, indent=1)
            write_private(self.path, text + "\n", keep_existing=True)  # a racing writer wins
            stamp = self._file_stamp()
        with self._lock:
            if stamp != self._stamp or self._ring is None:
                self._ring, self._stamp = self._read(), stamp
            return self._ring

    def rotate(self) -> str:
        """Add a new key and make it current; the old ones stay for verification."""
        self.keyring()  # the file exists
        with self._locked():
            data = json.loads(self.path.read_text())
            ident, entry = _new_entry()
            data["keys"][ident] = entry
            data["current"] = ident
            write_private(self.path, json.dumps(data, indent=1) + "\n")
        return ident

    def _locked(self) -> TextIO:
        lock = self.path.with_name(self.path.name + ".lock")
        handle = lock.open("a")
        fcntl.flock(handle, fcntl.LOCK_EX)
        return handle  # closing it (the with block) releases the lock

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_ino, st.st_size

    def _read(self) -> Keyring:
        try:
            data = json.loads(self.path.read_text())
            keys = {i: base64.b64decode(e["key"], validate=True) for i, e in data["keys"].items()}
            current = data["current"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ChainKeyError(f"chain key file {self.path} is unusable: {exc}") from None
        if current not in keys:
            raise ChainKeyError(f"chain key file {self.path}: current key {current!r} is missing")
        return Keyring(current, keys)


_files: dict[Path, KeyFile] = {}
_files_lock = threading.Lock()


def key_file() -> KeyFile:
    """The key file the settings name (``audit.chain_key_file``)."""
    path = Path(settings.AUDIT_CHAIN_KEY_FILE)
    with _files_lock:
        return _files.setdefault(path, KeyFile(path))


def keyring() -> Keyring:
    return key_file().keyring()
