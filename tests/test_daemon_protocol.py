"""The daemon's rpyc protocol, spoken to a real ``omserver serve`` process over loopback."""

from __future__ import annotations

import os
import pickle
import random
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from importlib.metadata import version
from pathlib import Path

import pytest
import rpyc

from omserver.client import (
    Client,
    DaemonUnreachable,
    FrameRefused,
    InvalidRequest,
)
from omserver.config import BASE_DIR
from omserver.protocol import wire
from omserverweb.jobs.models import Job
from tests.daemon_process import RunningDaemon, running_daemon
from tests.lab.procs import free_port, wait_for

MAX_FRAME = 64 * 1024  # the daemon under test refuses frames above this


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, test_database_url: str) -> RunningDaemon:
    modules = tmp_path_factory.mktemp("modules")
    shutil.copytree(BASE_DIR / "modules", modules, dirs_exist_ok=True)
    (modules / "common" / "Mid_9998.py").write_text("def run(ctx, params:\n")
    env = {
        "OMSERVER_DAEMON_MAX_FRAME_BYTES": str(MAX_FRAME),
        "OMSERVER_DAEMON_MODULES_DIR": str(modules),
    }
    with running_daemon(
        tmp_path_factory.mktemp("daemon"), env, database_url=test_database_url
    ) as running:
        yield running


@pytest.fixture
def web(daemon: RunningDaemon) -> Client:
    with daemon.client("web") as client:
        yield client


def raw_connection(daemon: RunningDaemon) -> rpyc.Connection:
    host, port = wire.parse_address(daemon.address)
    return rpyc.connect(host, port)


def cipher_of(daemon: RunningDaemon, name: str):
    return wire.cipher(wire.decode_key(daemon.issued[name]))


# -- what a well-behaved client sees ---------------------------------------------------


def test_ping_answers_version_backend_and_module_count(web):
    answer = web.ping()
    assert answer["version"] == version("omserver")
    assert answer["backend"] == "ansible"  # the default daemon.backend
    assert answer["modules"] == len(web.modules()["modules"]) > 0


def test_modules_lists_each_loaded_module_and_each_file_that_failed(web):
    answer = web.modules()
    assert all({"id", "name", "caption", "params"} <= set(m) for m in answer["modules"])
    assert 9998 not in {m["id"] for m in answer["modules"]}
    [(path, error)] = answer["errors"].items()
    assert path.endswith("Mid_9998.py") and "Mid_9998.py" in error


def test_arguments_of_the_wrong_type_are_refused_naming_the_field(web):
    with pytest.raises(InvalidRequest) as err:
        web.submit("1003", ["web01"])  # type: ignore[arg-type]
    assert err.value.field == "module"
    with pytest.raises(InvalidRequest) as err:
        web.job(True)  # type: ignore[arg-type]
    assert err.value.field == "job_id"


def test_a_client_added_while_the_daemon_runs_is_accepted_at_once(daemon):
    with daemon.client("newcomer") as client:
        assert client.ping()["version"]


def test_a_client_revoked_while_the_daemon_runs_is_refused_at_once(daemon):
    with daemon.client("leaver") as client:
        client.ping()
        daemon.keys.revoke("leaver")
        with pytest.raises(FrameRefused) as err:
            client.ping()
    assert err.value.code == "refused"


def test_a_client_with_the_wrong_key_is_refused(daemon):
    with Client(daemon.address, "web", wire.new_key()) as impostor:
        with pytest.raises(FrameRefused):
            impostor.ping()


def test_no_daemon_listening_means_daemon_unreachable():
    with Client(f"127.0.0.1:{free_port()}", "web", wire.new_key()) as client:
        with pytest.raises(DaemonUnreachable):
            client.ping()


def test_one_client_serves_many_threads_at_once(web):
    answers: list[dict] = []
    threads = [
        threading.Thread(target=lambda: answers.extend(web.ping() for _ in range(20)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 160


def test_a_client_outlives_a_daemon_restart(tmp_path, test_database_url):
    address = f"127.0.0.1:{free_port()}"
    env = {"OMSERVER_DAEMON_ADDRESS": address}
    with running_daemon(tmp_path, env, database_url=test_database_url) as first:
        client = first.client()
        client.ping()
    with running_daemon(
        tmp_path, env, issued=first.issued, database_url=test_database_url
    ) as second:
        assert second.issued["web"] == first.issued["web"]
        assert client.ping()["version"]  # the kept connection broke; one fresh try
    client.close()


# -- the command line ------------------------------------------------------------------------


def cli(daemon_address: str, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OMSERVER_DAEMON_ADDRESS": daemon_address,
        "OMSERVER_DAEMON_CLIENT_ID": "web",
        "OMSERVER_DAEMON_CLIENT_KEY": key,
    }
    env.pop("OMSERVER_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "omserver", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_omserver_ping_exits_0_when_the_daemon_answers(daemon):
    done = cli(daemon.address, daemon.issued["web"], "ping")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: omserver ")


def test_omserver_ping_exits_1_when_the_daemon_is_down_or_refuses(daemon):
    down = cli(f"127.0.0.1:{free_port()}", daemon.issued["web"], "ping")
    refused = cli(daemon.address, wire.new_key(), "ping")
    assert (down.returncode, refused.returncode) == (1, 1)
    assert "DaemonUnreachable" in down.stderr and "FrameRefused" in refused.stderr


def test_omserver_ping_without_a_key_is_a_usage_error(daemon, tmp_path, monkeypatch):
    monkeypatch.setenv("OMSERVER_PATHS_DATA_DIR", str(tmp_path))  # not the key make run left
    done = cli(daemon.address, "", "ping")
    assert done.returncode == 2
    assert "no client key" in done.stderr


@pytest.mark.parametrize(
    "setting, value",
    [
        ("OMSERVER_DAEMON_ADDRESS", "localhost"),
        ("OMSERVER_DAEMON_CLOCK_SKEW", "-1"),
        ("OMSERVER_DAEMON_WORKERS", "0"),
        ("OMSERVER_DAEMON_JOB_TIMEOUT", "0"),
        ("OMSERVER_DAEMON_HANDSHAKE_TIMEOUT", "0"),
        ("OMSERVER_DAEMON_MAX_CONNECTIONS_PER_ADDRESS", "0"),
        ("OMSERVER_DAEMON_MODULES_DIR", "/nonexistent/modules"),
    ],
)
def test_omserver_serve_refuses_a_bad_setting_naming_it(tmp_path, setting, value):
    done = serve(tmp_path, {setting: value})
    assert done.returncode == 2
    assert setting in done.stderr


def test_a_bad_setting_in_the_config_file_is_named_with_the_file(tmp_path):
    config = tmp_path / "omserver.toml"
    config.write_text("[daemon]\nworkers = 0\n")
    done = serve(tmp_path, {"OMSERVER_CONFIG": str(config)})
    assert done.returncode == 2
    assert f"daemon.workers in {config}: must be positive" in done.stderr


def test_a_second_daemon_on_a_taken_address_leaves_the_first_ones_jobs_alone(
    daemon, tmp_path, transactional_db, test_database_url
):
    """Started twice by mistake, the second stops before it marks the first's jobs."""
    from omserverweb.modules.models import ModuleDefinition

    ModuleDefinition.objects.get_or_create(pk=1003, defaults={"name": "os version"})
    running = Job.objects.create(
        module_id=1003, requested_by="t", client="t", status="running", daemon="default"
    )
    done = serve(
        tmp_path,
        {"OMSERVER_DAEMON_ADDRESS": daemon.address, "OMSERVER_DATABASE_URL": test_database_url},
    )
    assert done.returncode == 2
    assert f"OMSERVER_DAEMON_ADDRESS: cannot listen on {daemon.address}" in done.stderr
    assert Job.objects.get(pk=running.pk).status == "running"


def serve(data_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``omserver serve`` as an operator starts it, expected to stop at once."""
    environ = {**os.environ, "OMSERVER_PATHS_DATA_DIR": str(data_dir)}
    environ.pop("OMSERVER_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "omserver", "serve"],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


# -- only the one entry is reachable -----------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "get_service_name",
        "exposed_get_service_aliases",
        "exposed_exchange",
        "_gate",
        "_rpyc_getattr",
        "on_connect",
    ],
)
def test_nothing_but_exchange_is_reachable_over_rpyc(daemon, name):
    conn = raw_connection(daemon)
    try:
        with pytest.raises(AttributeError) as err:
            getattr(conn.root, name)
        assert ".py" not in str(err.value)  # rpyc says "<traceback denied>"
    finally:
        conn.close()


def test_the_service_cannot_be_pickled_across(daemon):
    conn = raw_connection(daemon)
    try:
        with pytest.raises(ValueError, match="pickling is disabled"):
            pickle.dumps(conn.root.exchange)
    finally:
        conn.close()


@pytest.mark.parametrize("argument", ["a string", 42, None, ("a", "tuple"), [b"a list"]])
def test_an_exchange_of_anything_but_bytes_is_refused(daemon, argument):
    conn = raw_connection(daemon)
    try:
        assert conn.root.exchange(argument) == wire.refusal()
    finally:
        conn.close()


# -- 1,000 hostile frames ----------------------------------------------------------------


def seal_plaintext(client: str, cipher, template: bytes) -> tuple[bytes, bytes]:
    """A request frame, by the documented layout, around any plaintext at all.

    ``TS`` and ``NONCE`` in ``template`` become the current time and the frame's nonce.
    """
    nonce = os.urandom(wire.NONCE_BYTES)
    plain = template.replace(b"TS", b"%f" % time.time()).replace(b"NONCE", nonce.hex().encode())
    header = b"OM" + bytes((wire.VERSION, ord("Q"), len(client))) + client.encode()
    return header + nonce + cipher.encrypt(nonce, plain, header), nonce


def submit_frame(client: str, cipher, now: float | None = None, **extra) -> tuple[bytes, bytes]:
    """What a job submission looks like: if one of these ever ran, a job would exist."""
    body = {
        "module": 1003,
        "targets": [{"hostname": "web01", "lan_ip": "127.0.0.1"}],
        "params": {},
        **extra,
    }
    return wire.seal_request(client, cipher, "submit", body, now=now or time.time())


def hostile_frames(daemon: RunningDaemon, rng) -> list[tuple[str, bytes, bytes | None, str]]:
    """(kind, frame, request nonce or None, expected refusal code) x 1,000.

    ``refused`` means the plain refusal; any other code is a sealed error answer.
    """
    web = cipher_of(daemon, "web")
    daemon.add_client("retired")
    retired = cipher_of(daemon, "retired")
    daemon.keys.revoke("retired")
    frames = []

    def add(kind, frame, nonce=None, code="refused"):
        frames.append((kind, frame, nonce, code))

    for _ in range(100):
        add("random bytes", rng.randbytes(rng.randrange(0, 2000)))
    for _ in range(100):
        frame, _ = submit_frame("web", web)
        add("truncated", frame[: rng.randrange(0, len(frame))])
    for _ in range(200):
        frame, _ = submit_frame("web", web)
        at = rng.randrange(len(frame))
        add(
            "bit-flipped", frame[:at] + bytes([frame[at] ^ 1 << rng.randrange(8)]) + frame[at + 1 :]
        )
    for _ in range(100):
        add("wrong key", submit_frame("web", wire.cipher(os.urandom(32)))[0])
    for n in range(100):
        add("unknown client", submit_frame(f"stranger-{n}", wire.cipher(os.urandom(32)))[0])
    for _ in range(100):
        add("revoked client", submit_frame("retired", retired)[0])
    for n in range(20):
        add("oversize", submit_frame("web", web, params={"pad": "x" * (MAX_FRAME + n)})[0])
    for _ in range(100):
        skew = 90 + rng.random() * 10 ** rng.randrange(7)
        frame, nonce = submit_frame("web", web, now=time.time() + rng.choice([-skew, skew]))
        add("stale", frame, nonce, "stale")
    for template in [
        b"",
        b"\xff",
        b"null",
        b"[]",
        b"{}",
        b'{"op":"submit"}',
        b"\x80\x04K\x01.",
    ] * 5 + [
        b'{"client":"web","ts":TS,"nonce":"NONCE","op":"submit","body":[]}',
        b'{"client":"web","ts":NaN,"nonce":"NONCE","op":"submit","body":{}}',
        b'{"client":"web","ts":"TS","nonce":"NONCE","op":"submit","body":{}}',
        b'{"client":"other","ts":TS,"nonce":"NONCE","op":"submit","body":{}}',
        b'{"client":"web","ts":TS,"nonce":"NONCE","op":"submit","body":{},"extra":1}',
    ] * 4:
        add("malformed body", *seal_plaintext("web", web, template), "malformed")
    for _ in range(5):  # the decoder's stack runs out: the request is too deep
        add("too deep", *seal_plaintext("web", web, b"[" * 50000), "invalid_request")
    for op in ["reboot", "__init__", "exposed_exchange", "Submit", ""] * 4:
        frame, nonce = wire.seal_request("web", web, op, {}, now=time.time())
        add("unknown operation", frame, nonce, "unknown_operation")
    return frames


def test_a_thousand_hostile_frames_are_refused_and_the_daemon_keeps_serving(
    daemon, web, transactional_db
):
    """Each is answered with a refusal, never run; each leaves a log line.

    Every frame that decrypts under a real key asks for a valid ``submit`` (or a
    ``ping`` for the replays), so any that ran would show as "RAN" here and as a
    row in the jobs table, which must stay empty.
    """
    jobs_before = Job.objects.count()
    rng = random.Random(4)
    frames = hostile_frames(daemon, rng)
    web_cipher = cipher_of(daemon, "web")
    conn = raw_connection(daemon)
    exchange = conn.root.exchange
    originals = [
        wire.seal_request("web", web_cipher, "ping", {}, now=time.time()) for _ in range(100)
    ]
    for frame, nonce in originals:
        assert wire.open_answer(exchange(frame), "web", web_cipher, nonce)["ok"] is True
    frames += [("replayed", frame, nonce, "replayed") for frame, nonce in originals]
    assert len(frames) == 1000
    refusals_before = daemon.refusals()

    outcomes = []
    for kind, frame, nonce, expected in frames:
        answer = exchange(frame)
        if expected == "refused":
            outcomes.append((kind, "refused" if answer == wire.refusal() else answer[:20]))
        else:
            payload = wire.open_answer(answer, "web", web_cipher, nonce)
            outcomes.append((kind, payload["error"]["code"] if not payload["ok"] else "RAN"))
    conn.close()

    wrong = [
        (kind, got)
        for (kind, _, _, expected), (_, got) in zip(frames, outcomes, strict=True)
        if got != expected
    ]
    assert wrong == []
    assert web.ping()["version"]
    assert daemon.refusals() - refusals_before == 1000  # one log line per refused frame
    assert Job.objects.count() == jobs_before


# -- hostile packets below the frame layer -------------------------------------------------


def send_packet(daemon: RunningDaemon, header: bytes, body: bytes = b"") -> None:
    """Write one raw rpyc packet; return once the daemon has hung up (or fail after 5 s)."""
    with socket.create_connection(wire.parse_address(daemon.address), timeout=5) as sock:
        sock.sendall(header + body)
        while sock.recv(65536):  # at most rpyc's own "close" message, then EOF
            pass


def test_a_packet_announcing_gigabytes_is_dropped_before_it_is_read(daemon, web):
    send_packet(daemon, struct.pack("!LB", 3_000_000_000, 0))
    assert "refused a packet of 3000000000 bytes" in daemon.log()
    assert web.ping()


def test_a_compressed_packet_that_inflates_beyond_the_limit_is_dropped(daemon, web):
    bomb = zlib.compress(bytes(50 * 1024 * 1024), 9)
    send_packet(daemon, struct.pack("!LB", len(bomb), 1), bomb + b"\n")
    assert "a packet inflating beyond" in daemon.log()
    assert web.ping()


def test_a_packet_rpyc_cannot_decode_closes_only_that_connection(daemon, web):
    garbage = bytes(range(256)) * 2
    send_packet(daemon, struct.pack("!LB", len(garbage), 0), garbage + b"\n")
    wait_for(lambda: "closed the connection from" in daemon.log(), 5, "the log line")
    assert web.ping()


def test_the_key_file_the_daemon_reads_is_private(daemon):
    assert (Path(daemon.keys.path).stat().st_mode & 0o077) == 0
