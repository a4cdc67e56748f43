"""Parameter schemas: checked when a module loads, enforced before anything runs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omserver.sdk import (
    MASK,
    ParamError,
    SchemaError,
    check_schema,
    mask_params,
    sensitive_values,
    validate_params,
)

SCHEMA = [
    {"name": "lines", "type": "int", "default": 50, "min": 1, "max": 1000},
    {"name": "verbose", "type": "bool", "default": False},
    {"name": "service", "type": "choice", "choices": ["nginx", "haproxy"], "required": True},
    {"name": "note", "type": "str", "pattern": r"[a-z ]*", "max_length": 20},
    {"name": "file", "type": "path"},
    {"name": "password", "type": "str", "sensitive": True},
]


def test_it_accepts_a_sound_schema() -> None:
    check_schema(SCHEMA)
    check_schema([])


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"name": "x"}, "must be a list"),
        (["x"], "field 1: must be an object"),
        ([{"name": "1x", "type": "int"}], "field 1: name must be an identifier"),
        ([{"name": "x", "type": "float"}], "field 'x': type must be one of"),
        ([{"name": "x", "type": "int"}, {"name": "x", "type": "str"}], "'x': declared twice"),
        ([{"name": "x", "type": "int", "colour": "red"}], "'x': unknown key(s) colour"),
        ([{"name": "x", "type": "str", "min": 1}], "'x': 'min' applies to int fields only"),
        ([{"name": "x", "type": "choice"}], "'x': choices must be a non-empty list"),
        ([{"name": "x", "type": "int", "min": 5, "max": 1}], "'x': min is above max"),
        ([{"name": "x", "type": "str", "pattern": "("}], "'x': pattern is not a regular"),
        ([{"name": "x", "type": "int", "default": "many"}], "'x': default must be a whole"),
        ([{"name": "x", "type": "int", "required": "yes"}], "'required' must be true or false"),
    ],
)
def test_it_names_the_field_of_a_malformed_schema(schema: object, message: str) -> None:
    with pytest.raises(SchemaError, match=None) as caught:
        check_schema(schema)
    assert message in str(caught.value)


def test_it_coerces_types_and_applies_defaults() -> None:
    clean = validate_params(
        SCHEMA, {"lines": "20", "verbose": "yes", "service": "nginx", "file": "/etc/hosts"}
    )
    assert clean == {
        "lines": 20,
        "verbose": True,
        "service": "nginx",
        "note": None,
        "file": "/etc/hosts",
        "password": None,
    }


def test_an_empty_value_falls_back_to_the_default() -> None:
    clean = validate_params(SCHEMA, {"lines": "", "service": "haproxy", "note": None})
    assert clean["lines"] == 50
    assert clean["note"] is None


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ({"lines": "5; touch /tmp/x", "service": "nginx"}, "lines", "must be a whole number"),
        ({"lines": "$(touch /tmp/x)", "service": "nginx"}, "lines", "must be a whole number"),
        ({"lines": "`touch /tmp/x`", "service": "nginx"}, "lines", "must be a whole number"),
        ({"lines": "5\ntouch /tmp/x", "service": "nginx"}, "lines", "must be a whole number"),
        ({"lines": True, "service": "nginx"}, "lines", "must be a whole number"),
        ({"lines": 0, "service": "nginx"}, "lines", "must be at least 1"),
        ({"lines": 1001, "service": "nginx"}, "lines", "must be at most 1000"),
        ({}, "service", "is required"),
        ({"service": "nginx; reboot"}, "service", "must be one of nginx, haproxy"),
        ({"service": "nginx", "verbose": "maybe"}, "verbose", "must be true or false"),
        ({"service": "nginx", "note": "UPPER"}, "note", "must match"),
        ({"service": "nginx", "note": "a" * 21}, "note", "at most 20 characters"),
        ({"service": "nginx", "note": 5}, "note", "must be text"),
        ({"service": "nginx", "file": "etc/hosts"}, "file", "must be an absolute path"),
        ({"service": "nginx", "file": "/etc/../root"}, "file", "must not contain '..'"),
        ({"service": "nginx", "file": "/tmp/a\nb"}, "file", "control characters"),
        ({"service": "nginx", "password": "a\x00b"}, "password", "NUL"),
        ({"service": "nginx", "colour": "red"}, "colour", "unknown parameter"),
    ],
)
def test_it_refuses_bad_values_naming_the_field(raw: dict, field: str, message: str) -> None:
    with pytest.raises(ParamError) as caught:
        validate_params(SCHEMA, raw)
    assert caught.value.field == field
    assert message in str(caught.value)


def test_it_refuses_parameters_that_are_not_an_object() -> None:
    with pytest.raises(ParamError) as caught:
        validate_params(SCHEMA, ["lines", 5])  # type: ignore[arg-type]
    assert caught.value.field == "__all__"


@given(st.text().filter(lambda s: s != "" and "\x00" not in s and len(s) <= 4096))
def test_any_text_passes_a_plain_str_field_unchanged(text: str) -> None:
    assert validate_params([{"name": "t", "type": "str"}], {"t": text}) == {"t": text}


@given(st.text().filter(lambda s: not s.strip().lstrip("+-").isdigit() and s != ""))
def test_only_digits_pass_an_int_field(text: str) -> None:
    with pytest.raises(ParamError):
        validate_params([{"name": "n", "type": "int"}], {"n": text})


def test_sensitive_values_are_masked_for_logs_and_records() -> None:
    params = validate_params(SCHEMA, {"service": "nginx", "password": "hunter22"})
    masked = mask_params(SCHEMA, params)
    assert masked["password"] == MASK
    assert masked["service"] == "nginx"
    assert params["password"] == "hunter22"  # the original is left alone
    assert mask_params(SCHEMA, {"password": None}) == {"password": None}


def test_sensitive_values_lists_what_to_blank_out_of_output() -> None:
    schema = [
        {"name": "a", "type": "str", "sensitive": True},
        {"name": "b", "type": "str", "sensitive": True},
        {"name": "c", "type": "str"},
    ]
    assert sensitive_values(schema, {"a": "abc", "b": "longer secret", "c": "public"}) == [
        "longer secret",
        "abc",
    ]
    assert sensitive_values(schema, {"a": "ab", "b": None, "c": "x"}) == []
