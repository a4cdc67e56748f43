"""Client keys: added, listed and revoked by the CLI; seen by the daemon at once."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from omserver.protocol import wire
from omserver.protocol.keys import KeyStore, KeyStoreError


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "clients.json")


def omserver(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMSERVER_PATHS_DATA_DIR": str(tmp_path)}
    env.pop("OMSERVER_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "omserver", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_keys_add_prints_the_client_id_and_a_new_key(tmp_path):
    done = omserver(tmp_path, "keys", "add", "deploy-bot")
    assert done.returncode == 0, done.stderr
    lines = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert lines["OMSERVER_DAEMON_CLIENT_ID"] == "deploy-bot"
    key = lines["OMSERVER_DAEMON_CLIENT_KEY"]
    assert len(wire.decode_key(key)) == 32
    assert KeyStore(tmp_path / "clients.json").cipher_for("deploy-bot") is not None


def test_keys_list_shows_names_and_dates_but_never_a_key(tmp_path):
    key = omserver(tmp_path, "keys", "add", "web").stdout.splitlines()[1].split("=", 1)[1]
    omserver(tmp_path, "keys", "add", "ci")
    omserver(tmp_path, "keys", "revoke", "ci")
    listing = omserver(tmp_path, "keys", "list")
    assert listing.returncode == 0
    assert key not in listing.stdout
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()}
    assert set(rows) == {"ci", "web"}
    assert "revoked" in rows["ci"] and "active" in rows["web"]
    records = json.loads(omserver(tmp_path, "keys", "list", "--json").stdout)
    assert [(r["name"], r["revoked"] is None) for r in records] == [("ci", False), ("web", True)]
    assert all(set(r) == {"name", "created", "revoked", "scope"} for r in records)


def test_keys_revoke_of_an_unknown_client_fails_with_a_message(tmp_path):
    done = omserver(tmp_path, "keys", "revoke", "nobody")
    assert done.returncode == 2
    assert "no client named 'nobody'" in done.stderr


def test_the_key_file_is_private_to_its_owner(store):
    store.add("web")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_a_name_with_an_active_key_cannot_be_added_twice(store):
    store.add("web")
    with pytest.raises(KeyStoreError, match="already has a key"):
        store.add("web")


def test_a_revoked_name_can_be_given_a_new_key(store):
    old = store.add("web")
    store.revoke("web")
    new = store.add("web")
    assert new != old
    assert [(c.name, c.revoked) for c in store.clients()] == [("web", None)]


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 65, "wéb"])
def test_client_names_must_fit_in_a_frame_header(store, name):
    with pytest.raises(KeyStoreError, match="bad client name"):
        store.add(name)


def test_the_daemon_side_sees_added_and_revoked_keys_without_reopening(tmp_path):
    daemon_view = KeyStore(tmp_path / "clients.json")
    cli = KeyStore(tmp_path / "clients.json")
    assert daemon_view.cipher_for("web") is None
    key = cli.add("web")
    cipher = daemon_view.cipher_for("web")
    frame, _ = wire.seal_request("web", wire.cipher(wire.decode_key(key)), "ping", {}, now=1.0)
    assert wire.decrypt(wire.split_request(frame), cipher)
    cli.revoke("web")
    assert daemon_view.cipher_for("web") is None


def test_a_broken_key_file_admits_nobody_and_says_so(store, caplog):
    store.add("web")
    assert store.cipher_for("web") is not None
    store.path.write_text("{not json")
    with caplog.at_level(logging.ERROR, logger="omserver.protocol.keys"):
        assert store.cipher_for("web") is None
    assert "unusable, refusing every client" in caplog.text


def test_concurrent_adds_never_lose_a_key(tmp_path):
    names = [f"tool-{n}" for n in range(16)]
    threads = [
        threading.Thread(target=KeyStore(tmp_path / "clients.json").add, args=(name,))
        for name in names
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [c.name for c in KeyStore(tmp_path / "clients.json").clients()] == sorted(names)
