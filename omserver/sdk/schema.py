"""Parameter schemas: declared by each module, checked at load, enforced before a run.

A schema is a JSON list of fields::

    [{"name": "lines", "type": "int", "default": 50, "min": 1, "max": 10000,
      "help": "how many lines"}]

Types: ``int``, ``str``, ``bool``, ``choice`` (one of ``choices``) and ``path``
(an absolute path without ``..``). Optional keys: ``label``, ``help``,
``default``, ``required``, ``sensitive``, ``choices``, ``min``/``max`` (int),
``pattern`` (a regular expression the whole str/path value must match) and
``max_length`` (str/path, default 4096). Validated values are typed Python
values; they reach hosts only as argv elements or environment variables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from omserver.sdk.errors import ParamError, SchemaError

MASK = "********"
TYPES = ("int", "str", "bool", "choice", "path")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
KEYS = {
    "name",
    "type",
    "label",
    "help",
    "default",
    "required",
    "sensitive",
    "choices",
    "min",
    "max",
    "pattern",
    "max_length",
}
ONLY_FOR = {
    "choices": ("choice",),
    "min": ("int",),
    "max": ("int",),
    "pattern": ("str", "path"),
    "max_length": ("str", "path"),
}
MAX_LENGTH = 4096
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


def check_schema(schema: Any) -> None:
    """Raise :class:`SchemaError` naming the first malformed field; None when sound."""
    if not isinstance(schema, list):
        raise SchemaError("the parameter schema must be a list of fields")
    seen: set[str] = set()
    for index, field in enumerate(schema):
        where = f"field {index + 1}"
        if not isinstance(field, Mapping):
            raise SchemaError(f"{where}: must be an object")
        name = field.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise SchemaError(f"{where}: name must be an identifier (letters, digits, _)")
        where = f"field {name!r}"
        if name in seen:
            raise SchemaError(f"{where}: declared twice")
        seen.add(name)
        unknown = set(field) - KEYS
        if unknown:
            raise SchemaError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        kind = field.get("type")
        if kind not in TYPES:
            raise SchemaError(f"{where}: type must be one of {', '.join(TYPES)}")
        for key, kinds in ONLY_FOR.items():
            if key in field and kind not in kinds:
                raise SchemaError(f"{where}: {key!r} applies to {'/'.join(kinds)} fields only")
        _check_field_options(where, field)


def _check_field_options(where: str, field: Mapping[str, Any]) -> None:
    for key in ("required", "sensitive"):
        if not isinstance(field.get(key, False), bool):
            raise SchemaError(f"{where}: {key!r} must be true or false")
    for key in ("label", "help"):
        if not isinstance(field.get(key, ""), str):
            raise SchemaError(f"{where}: {key!r} must be text")
    for key in ("min", "max", "max_length"):
        value = field.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise SchemaError(f"{where}: {key!r} must be a whole number")
    if (
        field.get("min") is not None
        and field.get("max") is not None
        and field["min"] > field["max"]
    ):
        raise SchemaError(f"{where}: min is above max")
    if "pattern" in field:
        try:
            re.compile(field["pattern"])
        except (re.error, TypeError) as exc:
            raise SchemaError(f"{where}: pattern is not a regular expression: {exc}") from exc
    if field["type"] == "choice":
        choices = field.get("choices")
        if (
            not isinstance(choices, list)
            or not choices
            or not all(isinstance(c, str | int) and not isinstance(c, bool) for c in choices)
        ):
            raise SchemaError(f"{where}: choices must be a non-empty list of strings or numbers")
    if field.get("default") is not None:
        try:
            _coerce(field, field["default"])
        except ParamError as exc:
            raise SchemaError(f"{where}: default {exc.message}") from exc


def validate_params(schema: list[dict[str, Any]], raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """Typed values for every field of ``schema`` (None when absent and optional).

    Raises :class:`ParamError` naming the first bad field. ``None`` and ``""``
    count as absent, so an empty form input falls back to the default.
    """
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise ParamError("__all__", "parameters must be an object of name: value")
    names = {field["name"] for field in schema}
    for key in raw:
        if key not in names:
            raise ParamError(str(key), "unknown parameter")
    clean: dict[str, Any] = {}
    for field in schema:
        name = field["name"]
        value = raw.get(name)
        if value is None or value == "":
            if field.get("required") and field.get("default") is None:
                raise ParamError(name, "is required")
            value = field.get("default")
            clean[name] = None if value is None else _coerce(field, value)
        else:
            clean[name] = _coerce(field, value)
    return clean


def mask_params(schema: list[dict[str, Any]], params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` safe to log and store: sensitive values become ``MASK``."""
    sensitive = {field["name"] for field in schema if field.get("sensitive")}
    return {
        key: MASK if key in sensitive and value not in (None, "") else value
        for key, value in params.items()
    }


def sensitive_values(schema: list[dict[str, Any]], params: Mapping[str, Any]) -> list[str]:
    """The text of each sensitive value, longest first, to blank out of output and logs.

    Values shorter than 3 characters are left alone: masking every "1" in an
    output would destroy it without protecting anything.
    """
    values = {
        str(params[field["name"]])
        for field in schema
        if field.get("sensitive") and params.get(field["name"]) not in (None, "")
    }
    return sorted((v for v in values if len(v) >= 3), key=len, reverse=True)


def _coerce(field: Mapping[str, Any], value: Any) -> Any:
    return _COERCE[field["type"]](field, value)


def _int(field: Mapping[str, Any], value: Any) -> int:
    if isinstance(value, bool):
        raise ParamError(field["name"], "must be a whole number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,18}\s*", value):
        value = int(value)
    if not isinstance(value, int):
        raise ParamError(field["name"], "must be a whole number")
    if field.get("min") is not None and value < field["min"]:
        raise ParamError(field["name"], f"must be at least {field['min']}")
    if field.get("max") is not None and value > field["max"]:
        raise ParamError(field["name"], f"must be at most {field['max']}")
    return value


def _bool(field: Mapping[str, Any], value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int) else None
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ParamError(field["name"], "must be true or false")


def _str(field: Mapping[str, Any], value: Any) -> str:
    if not isinstance(value, str):
        raise ParamError(field["name"], "must be text")
    if "\x00" in value:
        raise ParamError(field["name"], "must not contain NUL characters")
    limit = field.get("max_length") or MAX_LENGTH
    if len(value) > limit:
        raise ParamError(field["name"], f"must be at most {limit} characters")
    if "pattern" in field and not re.fullmatch(field["pattern"], value):
        raise ParamError(field["name"], f"must match {field['pattern']}")
    return value


def _path(field: Mapping[str, Any], value: Any) -> str:
    value = _str(field, value)
    if not value.startswith("/"):
        raise ParamError(field["name"], "must be an absolute path")
    if ".." in value.split("/"):
        raise ParamError(field["name"], "must not contain '..'")
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ParamError(field["name"], "must not contain control characters")
    return value


def _choice(field: Mapping[str, Any], value: Any) -> str | int:
    for choice in field["choices"]:
        if not isinstance(value, bool) and str(value) == str(choice):
            return choice
    allowed = ", ".join(str(c) for c in field["choices"])
    raise ParamError(field["name"], f"must be one of {allowed}")


_COERCE = {"int": _int, "bool": _bool, "str": _str, "path": _path, "choice": _choice}
