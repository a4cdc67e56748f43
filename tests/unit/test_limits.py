"""How deep a request nests, counted without recursion."""

from __future__ import annotations

import pytest

from omserver.protocol.limits import MAX_DEPTH, nesting_depth


@pytest.mark.parametrize(
    "value, depth",
    [(1, 0), ("[[", 0), ([], 1), ({"a": [1, {"b": []}]}, 4), ([[], [[[]]], []], 4)],
)
def test_nesting_depth_counts_lists_and_objects(value, depth):
    assert nesting_depth(value) == depth


def test_nesting_depth_stops_counting_past_the_limit():
    value: list = []
    for _ in range(10_000):
        value = [value]
    assert nesting_depth(value) == MAX_DEPTH + 1
