"""Reading a job's state (from the daemon or the REST API) the way a test asks about it."""

from __future__ import annotations

from typing import Any


def steps_of(state: dict[str, Any], host: str) -> list[dict[str, Any]]:
    """The host's step rows, in step order."""
    return sorted((s for s in state["steps"] if s["host"] == host), key=lambda s: s["number"])


def stdout_of(state: dict[str, Any], host: str) -> str:
    """What the host's steps printed on stdout, step after step."""
    return "".join(step["stdout"] for step in steps_of(state, host))


def hosts_of(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Host -> its row."""
    return {row["host"]: row for row in state["results"]}
