"""Targets and host results: the shapes every backend and the daemon share."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omserver.sdk import HostResult, Target, cap_output


def test_a_target_defaults_to_root_on_port_22() -> None:
    target = Target(hostname="web-01", lan_ip="10.0.0.5")
    assert (target.ssh_port, target.ssh_user) == (22, "root")
    assert Target(**target.to_dict()) == target


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hostname": "web;reboot", "lan_ip": "10.0.0.5"}, "hostname"),
        ({"hostname": "-rf", "lan_ip": "10.0.0.5"}, "hostname"),
        ({"hostname": "web", "lan_ip": "10.0.0.5; id"}, "10.0.0.5; id"),
        ({"hostname": "web", "lan_ip": "10.0.0.5", "ssh_port": 0}, "ssh_port"),
        ({"hostname": "web", "lan_ip": "10.0.0.5", "ssh_port": True}, "ssh_port"),
        (
            {"hostname": "web", "lan_ip": "10.0.0.5", "ssh_user": "root -oProxyCommand=x"},
            "ssh_user",
        ),
    ],
)
def test_a_target_refuses_values_that_are_not_plain_names(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=None) as caught:
        Target(**fields)
    assert message in str(caught.value)


def test_a_result_round_trips_through_json() -> None:
    result = HostResult("web-01", "failed", 2, "out", "err", 0.25, True)
    assert HostResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    assert not result.ok


def test_a_result_refuses_an_unknown_status() -> None:
    with pytest.raises(ValueError, match="status 'done'"):
        HostResult("web-01", "done")


def test_short_output_is_kept_whole() -> None:
    assert cap_output("hello", 1024) == ("hello", False)
    assert cap_output("é" * 512, 1024) == ("é" * 512, False)  # exactly 1024 bytes


def test_long_output_is_cut_at_the_byte_limit_and_flagged() -> None:
    text, cut = cap_output("x" * 5000, 1000)
    assert (text, cut) == ("x" * 1000, True)


def test_a_cut_never_splits_a_character() -> None:
    text, cut = cap_output("é" * 600, 1001)  # 1200 bytes; 1001 would split the 501st
    assert cut and text == "é" * 500


@given(st.text(), st.integers(min_value=1, max_value=64))
def test_a_capped_output_is_a_prefix_within_the_limit(text: str, limit: int) -> None:
    capped, cut = cap_output(text, limit)
    assert text.startswith(capped)
    assert len(capped.encode()) <= limit or not cut
    assert cut == (len(text.encode()) > limit)
