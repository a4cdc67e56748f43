"""The frame codec: every request and answer is one AES-GCM sealed frame.

AES-GCM (not Fernet) because it authenticates *associated data*: the cleartext
header (version, kind, client id) is bound to the ciphertext, so the daemon can
pick the client's key before decrypting and nobody can move a frame to another
client; an answer's associated data also holds the request's nonce, so an
answer cannot be replayed as the answer to another request. It is also one
AEAD primitive with no base64 layer, so the frames are smaller and faster.

Layout (all frames)::

    b"OM" | version (1 byte) | kind (1 byte) | ...
    request/answer:  ... | id length (1) | client id (ASCII) | nonce (12) | ciphertext+tag
    refusal:         ... | UTF-8 text (unauthenticated: nothing could be verified)

A request's plaintext is JSON (never pickle): ``{"client", "ts", "nonce", "op",
"body"}``. The ``nonce`` is the 12-byte AES-GCM nonce of the frame, repeated
inside the authenticated JSON; the daemon's replay cache keys on it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from omserver.protocol.limits import MAX_DEPTH, nesting_depth, too_deep

MAGIC = b"OM"
VERSION = 1
KIND_REQUEST = ord("Q")
KIND_ANSWER = ord("A")
KIND_REFUSAL = ord("X")
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
REQUEST_FIELDS = frozenset({"client", "ts", "nonce", "op", "body"})


class FrameError(ValueError):
    """A frame that must not be acted on; ``code`` says why, for logs and clients."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Request(NamedTuple):
    """An authenticated, well-formed request (not yet checked for age or replay)."""

    client: str
    ts: float
    nonce: bytes
    op: str
    body: dict[str, Any]


# -- keys ---------------------------------------------------------------------------


def new_key() -> str:
    """A fresh random 256-bit client key, as URL-safe base64 text."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()


def cipher(key: bytes) -> AESGCM:
    """The AEAD object for a raw key; build it once per key, it is reusable."""
    return AESGCM(key)


def decode_key(text: str | bytes) -> bytes:
    """The raw key from its text form; ``ValueError`` when it is not a 256-bit key."""
    try:
        raw = base64.urlsafe_b64decode(text.strip() if text else b"")
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a client key is 32 bytes in URL-safe base64") from exc
    if len(raw) != KEY_BYTES:
        raise ValueError("a client key is 32 bytes in URL-safe base64")
    return raw


def valid_client_id(client_id: str) -> bool:
    return CLIENT_ID.fullmatch(client_id) is not None


# -- the cleartext header -----------------------------------------------------------


class Sealed(NamedTuple):
    """A request or answer frame taken apart, not yet decrypted."""

    client: str
    header: bytes  # authenticated as associated data
    nonce: bytes
    ciphertext: bytes


def _header(kind: int, client_id: str) -> bytes:
    ident = client_id.encode("ascii")
    return MAGIC + bytes((VERSION, kind, len(ident))) + ident


def _split(frame: bytes, kind: int) -> Sealed:
    if len(frame) < 5 or frame[:2] != MAGIC:
        raise FrameError("malformed", "not an OMServer frame")
    if frame[2] != VERSION:
        raise FrameError("malformed", f"unsupported frame version {frame[2]}")
    if frame[3] != kind:
        raise FrameError("malformed", "unexpected frame kind")
    end = 5 + frame[4]
    try:
        client_id = frame[5:end].decode("ascii")
    except UnicodeDecodeError:
        client_id = ""
    if not valid_client_id(client_id):
        raise FrameError("malformed", "malformed client id")
    nonce, ciphertext = frame[end : end + NONCE_BYTES], frame[end + NONCE_BYTES :]
    if len(nonce) != NONCE_BYTES or len(ciphertext) < TAG_BYTES:
        raise FrameError("malformed", "truncated frame")
    return Sealed(client_id, frame[:end], nonce, ciphertext)


# -- JSON ---------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def _dumps(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


def _loads(data: bytes) -> Any:
    try:
        return _DECODER.decode(data.decode())
    except ValueError as exc:  # UnicodeDecodeError is a ValueError
        raise FrameError("malformed", "the body is not valid JSON") from exc
    except RecursionError:  # the decoder's own stack ran out, far beyond MAX_DEPTH
        raise FrameError("invalid_request", too_deep()) from None


def _loads_request(data: bytes) -> Any:
    """``_loads`` with nesting bounded at ``MAX_DEPTH``: too deep is a request the
    client can fix, so it gets an ``invalid_request`` answer naming the limit."""
    value = _loads(data)
    # Each level takes two bytes at least ("[]"): a short request cannot be too deep.
    if len(data) > 2 * MAX_DEPTH and nesting_depth(value) > MAX_DEPTH:
        raise FrameError("invalid_request", too_deep())
    return value


# -- requests -----------------------------------------------------------------------


def seal_request(
    client_id: str, cipher: AESGCM, op: str, body: dict[str, Any], *, now: float
) -> tuple[bytes, bytes]:
    """A request frame and its nonce (keep it to open the answer)."""
    nonce = os.urandom(NONCE_BYTES)
    header = _header(KIND_REQUEST, client_id)
    plain = _dumps({"client": client_id, "ts": now, "nonce": nonce.hex(), "op": op, "body": body})
    return header + nonce + cipher.encrypt(nonce, plain, header), nonce


def split_request(frame: bytes) -> Sealed:
    """The parts of a request frame; the client id picks the key to open it with."""
    return _split(frame, KIND_REQUEST)


def decrypt(sealed: Sealed, cipher: AESGCM) -> bytes:
    """The plaintext of a request; ``FrameError("bad_tag")`` unless ``cipher`` sealed it."""
    try:
        return cipher.decrypt(sealed.nonce, sealed.ciphertext, sealed.header)
    except InvalidTag as exc:
        raise FrameError("bad_tag", "the frame failed authentication") from exc


def parse_request(sealed: Sealed, plain: bytes) -> Request:
    """The request inside an authenticated frame; ``FrameError("malformed")`` if it is not
    one, ``FrameError("invalid_request")`` if it nests deeper than ``MAX_DEPTH``."""
    data = _loads_request(plain)
    if not isinstance(data, dict) or data.keys() != REQUEST_FIELDS:
        raise FrameError("malformed", f"a request has exactly the fields {sorted(REQUEST_FIELDS)}")
    ts, op, body = data["ts"], data["op"], data["body"]
    if data["client"] != sealed.client or data["nonce"] != sealed.nonce.hex():
        raise FrameError("malformed", "the body does not match the frame header")
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        raise FrameError("malformed", "ts must be a number of seconds")
    if not isinstance(op, str) or not isinstance(body, dict):
        raise FrameError("malformed", "op must be a string and body an object")
    return Request(sealed.client, float(ts), sealed.nonce, op, body)


# -- answers ------------------------------------------------------------------------


def seal_answer(client_id: str, cipher: AESGCM, request_nonce: bytes, payload: Any) -> bytes:
    """An answer only the requesting client can read, valid only for that request."""
    nonce = os.urandom(NONCE_BYTES)
    header = _header(KIND_ANSWER, client_id)
    return header + nonce + cipher.encrypt(nonce, _dumps(payload), header + request_nonce)


def refusal(message: str = "frame refused") -> bytes:
    """The plain answer to a frame that could not be authenticated."""
    return MAGIC + bytes((VERSION, KIND_REFUSAL)) + message.encode()[:200]


def open_answer(frame: bytes, client_id: str, cipher: AESGCM, request_nonce: bytes) -> Any:
    """The payload of the answer to our request; ``FrameError`` if it is anything else.

    A refusal raises ``FrameError("refused", text)``; a forged, altered or
    misdirected answer raises ``FrameError("bad_answer", …)``.
    """
    if frame[:2] == MAGIC and len(frame) >= 4 and frame[3] == KIND_REFUSAL:
        raise FrameError("refused", frame[4:].decode(errors="replace") or "frame refused")
    try:
        sealed = _split(frame, KIND_ANSWER)
    except FrameError as exc:
        raise FrameError("bad_answer", f"unreadable answer: {exc}") from exc
    if sealed.client != client_id:
        raise FrameError("bad_answer", "the answer is addressed to another client")
    try:
        plain = cipher.decrypt(sealed.nonce, sealed.ciphertext, sealed.header + request_nonce)
    except InvalidTag as exc:
        raise FrameError("bad_answer", "the answer failed authentication") from exc
    return _loads(plain)


def parse_address(text: str) -> tuple[str, int]:
    """``"127.0.0.1:11511"`` -> ``("127.0.0.1", 11511)``; ``ValueError`` names the problem."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {text!r}")
    return host.strip("[]"), int(port)
