"""Rollout plans: a canary first, then batches, stopping when too many hosts fail."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class RolloutError(ValueError):
    """A rollout request that makes no sense; the message names the field."""


@dataclass(frozen=True)
class Rollout:
    canary: int = 0  # hosts in the first batch; 0 = no canary
    batch_size: int = 0  # hosts per later batch; 0 = all the rest at once
    max_failure_ratio: float = 0.0  # stop when failed/done exceeds this

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> Rollout | None:
        if not raw:
            return None
        unknown = set(raw) - {"canary", "batch_size", "max_failure_ratio"}
        if unknown:
            raise RolloutError(f"rollout: unknown field(s) {', '.join(sorted(unknown))}")
        canary, batch_size = raw.get("canary", 0), raw.get("batch_size", 0)
        ratio = raw.get("max_failure_ratio", 0.0)
        for name, value in (("canary", canary), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise RolloutError(f"rollout: {name} must be a whole number, got {value!r}")
        if isinstance(ratio, bool) or not isinstance(ratio, int | float):
            raise RolloutError(f"rollout: max_failure_ratio must be a number, got {ratio!r}")
        rollout = cls(canary=canary, batch_size=batch_size, max_failure_ratio=float(ratio))
        if rollout.canary < 0 or rollout.batch_size < 0:
            raise RolloutError("rollout: canary and batch_size must not be negative")
        if not 0.0 <= rollout.max_failure_ratio <= 1.0:
            raise RolloutError("rollout: max_failure_ratio must be between 0 and 1")
        return rollout

    def as_dict(self) -> dict[str, Any]:
        return {
            "canary": self.canary,
            "batch_size": self.batch_size,
            "max_failure_ratio": self.max_failure_ratio,
        }

    def batches(self, targets: Sequence[T]) -> Iterator[list[T]]:
        rest = list(targets)
        if self.canary:
            yield rest[: self.canary]
            rest = rest[self.canary :]
        step = self.batch_size or len(rest)
        for start in range(0, len(rest), step or 1):
            yield rest[start : start + step]

    def stop_reason(self, done: int, failed: int, after: str) -> str | None:
        """Why the rollout stops now, or None to go on."""
        if done and failed / done > self.max_failure_ratio:
            return (
                f"stopped after {after}: {failed} of {done} hosts failed "
                f"({failed / done:.0%} > {self.max_failure_ratio:.0%} allowed)"
            )
        return None
