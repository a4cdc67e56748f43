"""How deep a decoded request may nest.

Python's JSON decoder recurses once per level and fails with ``RecursionError``
somewhere near a thousand levels, depending on the stack already in use; the code
after it (schema checks, the record's JSON columns) recurses too. A fixed limit far
below that gives every too-deep request the same clear answer, wherever it came from.
"""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 64  # levels of lists and objects; a real request uses fewer than ten


def nesting_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """Levels of lists and dicts in ``value`` (a scalar is 0), counted without recursion;
    the count stops at ``limit + 1``, so any result above ``limit`` means too deep."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, depth)
        if depth > limit:
            return depth
        stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return deepest


def too_deep(limit: int = MAX_DEPTH) -> str:
    """The one message for a request over the limit."""
    return f"the request nests lists and objects deeper than {limit} levels"
