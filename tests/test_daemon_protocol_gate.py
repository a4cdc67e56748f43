"""The gate's contract with whatever handler runs the operations.

The handler is the daemon's plug-in point (the job engine implements it), so
these tests plug in small handlers that break the rules on purpose and check
what reaches the client: never a traceback, always a sealed, typed error.
"""

from __future__ import annotations

import logging
import time

import pytest

from omserver.daemon.service import Gate
from omserver.protocol import wire
from omserver.protocol.operations import OperationError

KEY = wire.cipher(wire.decode_key(wire.new_key()))


class OneKey:
    def cipher_for(self, client_id: str):
        return KEY if client_id == "web" else None


class Recorder:
    """Answers every operation with what it was called with."""

    def __getattr__(self, op):
        return lambda caller, **args: {"op": op, "caller": caller, "args": args}


class Crashing:
    def ping(self, caller):
        raise RuntimeError("password=hunter2 in /srv/secret/path.py")


class Unserializable:
    def ping(self, caller):
        return {"backend": {"a", "set"}}


class Refusing:
    def submit(self, caller, **request):
        raise OperationError("invalid_params", "lines: must be at most 10000", "lines")


def ask(handler, op: str, body: dict | None = None) -> dict:
    gate = Gate(OneKey(), handler, clock_skew=60, max_frame_bytes=1 << 20)
    frame, nonce = wire.seal_request("web", KEY, op, body or {}, now=time.time())
    return wire.open_answer(gate.exchange(frame, "test"), "web", KEY, nonce)


def test_the_handler_gets_the_caller_and_typed_arguments_with_defaults():
    answer = ask(Recorder(), "submit", {"module": 1003, "targets": [{"hostname": "web01"}]})
    assert answer == {
        "ok": True,
        "result": {
            "op": "submit",
            "caller": "web",
            "args": {
                "module": 1003,
                "targets": [{"hostname": "web01"}],
                "params": {},
                "timeout": None,
                "requested_by": None,
                "rollout": None,
                "job": None,
                "request": None,
            },
        },
    }
    assert ask(Recorder(), "job", {"job_id": 7})["result"]["args"] == {"job_id": 7, "cursor": 0}


@pytest.mark.parametrize(
    "op, body, field",
    [
        ("submit", {"targets": []}, "module"),
        ("submit", {"module": 1.5, "targets": []}, "module"),
        ("submit", {"module": 1, "targets": {}}, "targets"),
        ("run", {"module": 1, "targets": [], "wait": "soon"}, "wait"),
        ("wait", {"job_id": 1, "timeout": True}, "timeout"),
        ("cancel", {"job_id": 1, "force": True}, "force"),
    ],
)
def test_arguments_are_checked_before_the_handler_is_called(op, body, field):
    answer = ask(Recorder(), op, body)
    assert answer["ok"] is False
    assert (answer["error"]["code"], answer["error"]["field"]) == ("invalid_request", field)


def test_an_operation_error_reaches_the_client_with_its_code_and_field():
    answer = ask(Refusing(), "submit", {"module": 1001, "targets": []})
    assert answer["error"] == {
        "code": "invalid_params",
        "message": "lines: must be at most 10000",
        "field": "lines",
    }


def test_a_crash_in_the_handler_is_logged_but_never_shown_to_the_client(caplog):
    with caplog.at_level(logging.ERROR, logger="omserver.service"):
        answer = ask(Crashing(), "ping")
    assert answer["error"]["code"] == "internal"
    assert "hunter2" not in str(answer) and "secret" not in str(answer)
    assert "hunter2" in caplog.text  # the operator still sees what happened


def test_a_result_that_is_not_json_becomes_an_internal_error(caplog):
    with caplog.at_level(logging.ERROR, logger="omserver.service"):
        answer = ask(Unserializable(), "ping")
    assert answer["error"]["code"] == "internal"
    assert "is not JSON" in caplog.text
