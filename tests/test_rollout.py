"""Rollout plans: what a request may ask for, the batches it makes, when it stops."""

from __future__ import annotations

import pytest

from omserver.jobs.rollout import Rollout, RolloutError


def test_a_canary_then_batches_covers_every_host_once_in_order() -> None:
    plan = Rollout.from_dict({"canary": 1, "batch_size": 2, "max_failure_ratio": 0.5})
    assert list(plan.batches(list("abcdef"))) == [["a"], ["b", "c"], ["d", "e"], ["f"]]
    assert list(Rollout.from_dict({"canary": 2}).batches(list("abcde"))) == [
        ["a", "b"],
        ["c", "d", "e"],
    ]


def test_it_stops_once_the_failed_share_is_over_the_limit() -> None:
    plan = Rollout.from_dict({"canary": 1, "max_failure_ratio": 0.25})
    assert plan.stop_reason(4, 1, "batch 2") is None  # 25 % is allowed
    assert plan.stop_reason(1, 1, "the canary") == (
        "stopped after the canary: 1 of 1 hosts failed (100% > 25% allowed)"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"canary": 1.9}, "canary must be a whole number"),
        ({"canary": True}, "canary must be a whole number"),
        ({"batch_size": "2"}, "batch_size must be a whole number"),
        ({"canary": -1}, "must not be negative"),
        ({"canary": 1, "max_failure_ratio": "0.5"}, "max_failure_ratio must be a number"),
        ({"canary": 1, "max_failure_ratio": 1.5}, "between 0 and 1"),
        ({"canary": 1, "cannary": 2}, "unknown field(s) cannary"),
    ],
)
def test_a_request_that_makes_no_sense_is_refused_by_name(raw: dict, message: str) -> None:
    with pytest.raises(RolloutError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Rollout.from_dict(raw)
