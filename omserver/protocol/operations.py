"""The operations a client may ask of the daemon, their arguments, and their errors.

Both ends read this table: the daemon type-checks every request against it
before a handler sees it, and the client maps the error codes to its
exception types.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class OperationError(Exception):
    """A handler's refusal the client should see: ``code``, message, offending ``field``.

    Codes the client maps to typed errors: ``invalid_request``, ``invalid_params``,
    ``unknown_module``, ``unknown_job``, ``unavailable``, ``not_permitted`` (outside
    the key's scope).
    """

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Arg:
    kind: str  # a key of _CHECKS, worded for the error message
    required: bool = True
    default: Callable[[], Any] = lambda: None  # a fresh value per request


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "an integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "a number": lambda v: (
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ),
    "a string": lambda v: isinstance(v, str),
    "a list": lambda v: isinstance(v, list),
    "an object": lambda v: isinstance(v, dict),
}

_SUBMIT = {
    "module": Arg("an integer"),
    "targets": Arg("a list"),
    "params": Arg("an object", required=False, default=dict),
    "timeout": Arg("a number", required=False),
    "requested_by": Arg("a string", required=False),
    "rollout": Arg("an object", required=False),
    "job": Arg("an integer", required=False),  # run this daemon's part of a web job
    # The client's id for this submission: a retry with the same id gets the same job.
    "request": Arg("a string", required=False),
}

OPERATIONS: dict[str, dict[str, Arg]] = {
    "ping": {},
    "modules": {},
    "submit": _SUBMIT,
    "run": {**_SUBMIT, "wait": Arg("a number")},
    "job": {"job_id": Arg("an integer"), "cursor": Arg("an integer", required=False, default=int)},
    "wait": {"job_id": Arg("an integer"), "timeout": Arg("a number")},
    "cancel": {"job_id": Arg("an integer")},
}


def arguments(op: str, body: dict[str, Any]) -> dict[str, Any]:
    spec = OPERATIONS[op]
    unknown = body.keys() - spec.keys()
    if unknown:
        name = min(unknown)[:40]
        raise OperationError("invalid_request", f"{op}: unknown argument {name!r}", name)
    args = {}
    for name, arg in spec.items():
        value = body.get(name)
        if value is None:
            if arg.required:
                raise OperationError("invalid_request", f"{op}: {name} is required", name)
            value = arg.default()
        elif not _CHECKS[arg.kind](value):
            raise OperationError("invalid_request", f"{op}: {name} must be {arg.kind}", name)
        args[name] = value
    return args
