"""Properties of the frame codec, for any client, operation and body."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from omserver.protocol import wire

KEY = wire.cipher(wire.decode_key(wire.new_key()))

client_ids = st.from_regex(wire.CLIENT_ID, fullmatch=True)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
bodies = st.dictionaries(st.text(max_size=12), json_values, max_size=5)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)


def open_request(frame: bytes) -> wire.Request:
    sealed = wire.split_request(frame)
    return wire.parse_request(sealed, wire.decrypt(sealed, KEY))


@st.composite
def mutations(draw, frame: bytes) -> bytes:
    """``frame`` with bits flipped, cut short, or bytes added, inserted or replaced."""
    kind = draw(st.sampled_from(["flip", "truncate", "append", "insert", "splice"]))
    if kind == "flip":
        at = draw(st.integers(0, len(frame) - 1))
        bit = draw(st.integers(0, 7))
        return frame[:at] + bytes([frame[at] ^ (1 << bit)]) + frame[at + 1 :]
    if kind == "truncate":
        return frame[: draw(st.integers(0, len(frame) - 1))]
    extra = draw(st.binary(min_size=1, max_size=16))
    at = draw(st.integers(0, len(frame)))
    if kind == "append":
        return frame + extra
    if kind == "insert":
        return frame[:at] + extra + frame[at:]
    mutated = frame[:at] + extra + frame[at + len(extra) :]
    return mutated if mutated != frame else frame + extra


@given(client=client_ids, op=st.text(max_size=20), body=bodies, now=times)
def test_every_request_opens_to_what_was_sealed(client, op, body, now):
    frame, nonce = wire.seal_request(client, KEY, op, body, now=now)
    assert open_request(frame) == wire.Request(client, now, nonce, op, body)


@given(client=client_ids, payload=json_values)
def test_every_answer_opens_to_what_was_sealed(client, payload):
    nonce = b"r" * wire.NONCE_BYTES
    answer = wire.seal_answer(client, KEY, nonce, payload)
    assert wire.open_answer(answer, client, KEY, nonce) == payload


@given(data=st.data(), client=client_ids, body=bodies)
def test_any_change_to_a_request_is_refused(data, client, body):
    frame, _ = wire.seal_request(client, KEY, "submit", body, now=1.0)
    mutated = data.draw(mutations(frame))
    try:
        open_request(mutated)
    except wire.FrameError as exc:
        assert exc.code in {"malformed", "bad_tag"}
    else:
        raise AssertionError("a changed frame was accepted")


@given(data=st.data(), payload=json_values)
def test_any_change_to_an_answer_is_refused(data, payload):
    nonce = b"r" * wire.NONCE_BYTES
    answer = wire.seal_answer("alice", KEY, nonce, payload)
    mutated = data.draw(mutations(answer))
    try:
        wire.open_answer(mutated, "alice", KEY, nonce)
    except wire.FrameError as exc:
        assert exc.code in {"bad_answer", "refused"}
    else:
        raise AssertionError("a changed answer was accepted")


@given(junk=st.binary(max_size=300))
def test_random_bytes_never_open(junk):
    try:
        open_request(junk)
    except wire.FrameError:
        return
    raise AssertionError("random bytes opened as a request")
