"""The client key store: one revocable key per client id, with its scope, in a 0600 JSON file.

The CLI (``omserver keys …``) writes the file atomically under a lock; the
daemon re-reads it whenever it changes, so a key added, revoked or rescoped takes
effect on the next frame without a restart. An entry written before keys had
scopes has none: it gets the narrow scope (see :mod:`omserver.protocol.scope`),
never the full trust it used to have.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from omserver.config import Config
from omserver.files import write_private
from omserver.protocol.scope import Scope, ScopeError
from omserver.protocol.wire import cipher, decode_key, new_key, valid_client_id

log = logging.getLogger("omserver.protocol.keys")


class KeyStoreError(ValueError):
    """A key-store request that cannot be done (bad name, duplicate, unknown, bad file)."""


@dataclass(frozen=True)
class ClientRecord:
    """What ``keys list`` shows: never the key itself."""

    name: str
    created: str
    revoked: str | None
    scope: Scope


def key_file(config: Config) -> Path:
    """``daemon.key_file``, or ``clients.json`` in the data folder."""
    configured = config["daemon.key_file"]
    return Path(configured) if configured else config.data_dir / "clients.json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class KeyStore:
    """The key file: the daemon reads it again whenever it changed; the CLI writes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stat_path = str(path)  # os.stat is quicker on a str, and runs per frame
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = (-1, -1, -1)  # never a real file's
        self._ciphers: dict[str, AESGCM] = {}
        self._scopes: dict[str, Scope] = {}

    # -- the daemon's side ------------------------------------------------------------

    def cipher_for(self, client_id: str) -> AESGCM | None:
        """The active key of ``client_id`` as a cipher, or None (unknown, revoked, no file).

        One ``stat`` per call: a key added or revoked counts from the next frame.
        """
        self._refresh()
        return self._ciphers.get(client_id)

    def scope_for(self, client_id: str) -> Scope:
        """What ``client_id``'s active key may do; the narrow scope for anyone else."""
        self._refresh()
        return self._scopes.get(client_id) or Scope()

    def _refresh(self) -> None:
        stamp = self._file_stamp()
        if stamp != self._stamp:
            with self._lock:
                self._reload(stamp)

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self._stat_path)
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_ino, st.st_size

    def _reload(self, stamp: tuple[int, int, int] | None) -> None:
        if stamp == self._stamp:  # another thread reloaded it meanwhile
            return
        try:
            active = {n: e for n, e in self._read().items() if not e.get("revoked")}
            scopes = {name: Scope.from_json(entry.get("scope")) for name, entry in active.items()}
            ciphers = {name: cipher(decode_key(entry["key"])) for name, entry in active.items()}
        except (KeyStoreError, KeyError, TypeError, ValueError) as exc:
            self._ciphers, self._scopes = {}, {}  # fail closed: a broken file admits nobody
            log.error("client key file %s is unusable, refusing every client: %s", self.path, exc)
        else:
            self._ciphers, self._scopes = ciphers, scopes
            log.info("loaded %d active client key(s) from %s", len(ciphers), self.path)
            unscoped = sorted(name for name, scope in scopes.items() if not scope.assigned)
            if unscoped:
                log.warning(
                    "client key(s) without a scope, allowed nothing but ping until given one "
                    "(`omserver keys scope NAME …`, `--web` for the web console's): %s",
                    ", ".join(unscoped),
                )
        # Last: a frame checked meanwhile by another thread sees the new stamp only with
        # the new keys, so a revoked key is not taken once more on the old ones.
        self._stamp = stamp

    # -- the CLI's side -----------------------------------------------------------------

    def add(self, name: str, scope: Scope | None = None) -> str:
        """Create a key for ``name`` (or replace a revoked one) and return it.

        ``scope``: what it may do; by default nothing but ping and its own jobs.
        """
        if not valid_client_id(name):
            raise KeyStoreError(
                f"bad client name {name!r}: 1-64 of A-Z a-z 0-9 _ . -, starting alphanumeric"
            )
        key = new_key()
        with self._writing() as clients:
            if name in clients and not clients[name].get("revoked"):
                raise KeyStoreError(f"client {name!r} already has a key; revoke it first")
            clients[name] = {
                "key": key,
                "created": _now(),
                "revoked": None,
                "scope": (scope or Scope()).to_json(),
            }
        return key

    def set_scope(self, name: str, scope: Scope) -> None:
        """Replace what ``name``'s key may do; from the daemon's next frame on."""
        with self._writing() as clients:
            if name not in clients:
                raise KeyStoreError(f"no client named {name!r}")
            clients[name]["scope"] = scope.to_json()

    def revoke(self, name: str) -> None:
        with self._writing() as clients:
            if name not in clients:
                raise KeyStoreError(f"no client named {name!r}")
            if not clients[name].get("revoked"):
                clients[name]["revoked"] = _now()

    def clients(self) -> list[ClientRecord]:
        try:
            return [
                ClientRecord(
                    name,
                    entry.get("created", ""),
                    entry.get("revoked"),
                    Scope.from_json(entry.get("scope")),
                )
                for name, entry in sorted(self._read().items())
            ]
        except ScopeError as exc:
            raise KeyStoreError(f"{self.path}: {exc}") from exc

    # -- the file -------------------------------------------------------------------------

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise KeyStoreError(f"{self.path} is not valid JSON: {exc}") from exc
        clients = data.get("clients") if isinstance(data, dict) else None
        if not isinstance(clients, dict) or not all(isinstance(e, dict) for e in clients.values()):
            raise KeyStoreError(f"{self.path} has no valid 'clients' table")
        return clients

    @contextmanager
    def _writing(self) -> Iterator[dict[str, dict[str, Any]]]:
        """Read-modify-write under an exclusive lock, so two CLI runs never lose a key."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600), "r+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            clients = self._read()
            yield clients
            write_private(self.path, json.dumps({"clients": clients}, indent=2) + "\n")
