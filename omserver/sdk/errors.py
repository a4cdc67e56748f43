"""The SDK's error types: one per thing that can be wrong."""

from __future__ import annotations


class ModuleError(Exception):
    """A module gives up; its message becomes the failure of every host still in play."""


class ParamError(ValueError):
    """A parameter value is refused; ``field`` names it ("__all__" for the whole set)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field != "__all__" else message)
        self.field = field
        self.message = message


class SchemaError(ValueError):
    """A module's parameter schema is malformed; the message names the field."""
