"""The frame codec: what a request and an answer carry, and what opens them."""

from __future__ import annotations

import json
import time

import pytest

from omserver.protocol import wire
from omserver.protocol.limits import too_deep
from omserver.protocol.replay import ReplayCache

ALICE = wire.cipher(wire.decode_key(wire.new_key()))
MALLORY = wire.cipher(wire.decode_key(wire.new_key()))


def request(
    op: str = "ping",
    body: dict | None = None,
    *,
    client: str = "alice",
    cipher=ALICE,
    now: float | None = None,
) -> tuple[bytes, bytes]:
    return wire.seal_request(client, cipher, op, body or {}, now=now or time.time())


def open_request(frame: bytes, cipher=ALICE) -> wire.Request:
    sealed = wire.split_request(frame)
    return wire.parse_request(sealed, wire.decrypt(sealed, cipher))


def sealed_plaintext(plain: bytes, client: str = "alice") -> tuple[wire.Sealed, bytes]:
    """A frame whose ciphertext is valid but whose plaintext is ``plain``."""
    nonce = b"n" * wire.NONCE_BYTES
    header = b"OM" + bytes((wire.VERSION, wire.KIND_REQUEST, len(client))) + client.encode()
    frame = header + nonce + ALICE.encrypt(nonce, plain, header)
    sealed = wire.split_request(frame)
    return sealed, wire.decrypt(sealed, ALICE)


def test_a_request_carries_client_time_nonce_operation_and_body():
    frame, nonce = request(
        "submit", {"module": 1003, "targets": [{"hostname": "web01"}]}, now=1700000000.5
    )
    got = open_request(frame)
    assert got == wire.Request(
        "alice", 1700000000.5, nonce, "submit", {"module": 1003, "targets": [{"hostname": "web01"}]}
    )


def test_the_client_id_is_readable_before_decryption_and_nothing_else_is():
    frame, _ = request("submit", {"params": {"secret": "hunter2"}})
    assert wire.split_request(frame).client == "alice"
    assert b"hunter2" not in frame and b"submit" not in frame


def test_a_frame_sealed_with_another_key_fails_authentication():
    frame, _ = request(cipher=MALLORY)
    with pytest.raises(wire.FrameError) as err:
        open_request(frame)
    assert err.value.code == "bad_tag"


def test_a_frame_moved_to_another_client_id_fails_authentication():
    frame, _ = request(client="alice")
    moved = frame.replace(b"alice", b"bobby", 1)
    with pytest.raises(wire.FrameError) as err:
        open_request(moved)
    assert err.value.code == "bad_tag"


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"OM",
        b"XX\x01Q\x05alice",
        b"OM\x02Q\x05alice" + bytes(40),
        b"OM\x01Q\x05al ce" + bytes(40),
        b"OM\x01Q\x05alice" + bytes(20),
    ],
)
def test_garbage_and_truncated_headers_are_malformed(frame):
    with pytest.raises(wire.FrameError) as err:
        wire.split_request(frame)
    assert err.value.code == "malformed"


@pytest.mark.parametrize(
    "plain",
    [
        b"\xff\xfe",
        b"[]",
        b'"ping"',
        b"{}",
        b'{"client":"alice","ts":NaN,"nonce":"6e6e6e6e6e6e6e6e6e6e6e6e","op":"ping","body":{}}',
        b'{"client":"alice","ts":"now","nonce":"6e6e6e6e6e6e6e6e6e6e6e6e","op":"ping","body":{}}',
        b'{"client":"alice","ts":1,"nonce":"6e6e6e6e6e6e6e6e6e6e6e6e","op":"ping","body":[]}',
        b'{"client":"alice","ts":1,"nonce":"6e6e6e6e6e6e6e6e6e6e6e6e","op":7,"body":{}}',
        b'{"client":"bobby","ts":1,"nonce":"6e6e6e6e6e6e6e6e6e6e6e6e","op":"ping","body":{}}',
        b'{"client":"alice","ts":1,"nonce":"000000000000000000000000","op":"ping","body":{}}',
        b'{"client":"alice","ts":1,"nonce":"6e6e6e6e6e6e6e6e6e6e6e6e","op":"ping","body":{},"x":1}',
    ],
)
def test_an_authenticated_body_that_is_not_a_request_is_malformed(plain):
    sealed, opened = sealed_plaintext(plain)
    with pytest.raises(wire.FrameError) as err:
        wire.parse_request(sealed, opened)
    assert err.value.code == "malformed"


@pytest.mark.parametrize("depth", [65, 900, 100000])
def test_an_authenticated_body_nested_too_deep_is_an_invalid_request_naming_the_limit(depth):
    sealed, opened = sealed_plaintext(b"[" * depth + b"]" * depth)
    with pytest.raises(wire.FrameError) as err:
        wire.parse_request(sealed, opened)
    assert (err.value.code, err.value.message) == ("invalid_request", too_deep())


def test_the_body_is_json_never_pickle():
    sealed, opened = sealed_plaintext(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.")
    with pytest.raises(wire.FrameError):
        wire.parse_request(sealed, opened)
    frame, _ = request("ping", {"a": [1, 2.5, None, True, "é"]})
    assert json.loads(wire.decrypt(wire.split_request(frame), ALICE))["body"] == {
        "a": [1, 2.5, None, True, "é"]
    }


def test_an_answer_opens_only_for_the_request_it_answers():
    _, first = request()
    _, second = request()
    answer = wire.seal_answer("alice", ALICE, first, {"ok": True, "result": 1})
    assert wire.open_answer(answer, "alice", ALICE, first) == {"ok": True, "result": 1}
    with pytest.raises(wire.FrameError) as err:
        wire.open_answer(answer, "alice", ALICE, second)
    assert err.value.code == "bad_answer"


def test_a_request_cannot_pose_as_an_answer():
    frame, nonce = request()
    with pytest.raises(wire.FrameError) as err:
        wire.open_answer(frame, "alice", ALICE, nonce)
    assert err.value.code == "bad_answer"


def test_an_answer_for_another_client_is_refused_by_the_client():
    _, nonce = request()
    answer = wire.seal_answer("bobby", ALICE, nonce, {"ok": True})
    with pytest.raises(wire.FrameError) as err:
        wire.open_answer(answer, "alice", ALICE, nonce)
    assert err.value.code == "bad_answer"


def test_a_plain_refusal_reads_as_refused():
    with pytest.raises(wire.FrameError) as err:
        wire.open_answer(wire.refusal(), "alice", ALICE, b"n" * 12)
    assert (err.value.code, err.value.message) == ("refused", "frame refused")


def test_keys_are_256_bit_and_text():
    key = wire.new_key()
    assert len(wire.decode_key(key)) == 32
    assert wire.new_key() != key
    for bad in ["", "short", key[:-4], "!" * 44]:
        with pytest.raises(ValueError):
            wire.decode_key(bad)


@pytest.mark.parametrize(
    "name, ok",
    [
        ("web", True),
        ("ci.deploy-2", True),
        ("A" * 64, True),
        ("", False),
        ("-web", False),
        ("A" * 65, False),
        ("wéb", False),
        ("a b", False),
        ("web\n", False),
    ],
)
def test_client_ids_are_short_ascii_names(name, ok):
    assert wire.valid_client_id(name) is ok


@pytest.mark.parametrize(
    "text, expected", [("127.0.0.1:11511", ("127.0.0.1", 11511)), ("[::1]:80", ("::1", 80))]
)
def test_addresses_are_host_colon_port(text, expected):
    assert wire.parse_address(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1", ":80", "host:0", "host:70000", "host:http"])
def test_bad_addresses_are_refused(text):
    with pytest.raises(ValueError):
        wire.parse_address(text)


class TestReplayCache:
    def test_a_nonce_is_accepted_once(self):
        cache = ReplayCache(skew=60)
        cache.admit("alice", b"1", ts=1000, now=1000)
        with pytest.raises(wire.FrameError) as err:
            cache.admit("alice", b"1", ts=1000, now=1001)
        assert err.value.code == "replayed"

    def test_nonces_are_per_client(self):
        cache = ReplayCache(skew=60)
        cache.admit("alice", b"1", ts=1000, now=1000)
        cache.admit("bobby", b"1", ts=1000, now=1000)

    @pytest.mark.parametrize("ts", [939.9, 1060.1])
    def test_timestamps_outside_the_skew_are_stale(self, ts):
        with pytest.raises(wire.FrameError) as err:
            ReplayCache(skew=60).admit("alice", b"1", ts=ts, now=1000)
        assert err.value.code == "stale"

    def test_nonces_are_forgotten_once_their_frame_would_be_stale(self):
        cache = ReplayCache(skew=60)
        cache.admit("alice", b"1", ts=1000, now=1000)
        cache.admit("alice", b"2", ts=1050, now=1061)
        assert len(cache) == 1

    def test_a_full_cache_refuses_old_frames_rather_than_forget_their_nonces(self):
        cache = ReplayCache(skew=60, capacity=2)
        cache.admit("alice", b"1", ts=1000, now=1000)
        cache.admit("alice", b"2", ts=1001, now=1001)
        cache.admit("alice", b"3", ts=1002, now=1002)  # pushes nonce 1 out
        assert len(cache) == 2
        with pytest.raises(wire.FrameError) as err:
            cache.admit("alice", b"1", ts=1000, now=1003)  # the replay nonce 1 could hide
        assert err.value.code == "stale"
        cache.admit("alice", b"4", ts=1003, now=1003)  # fresh frames still pass
