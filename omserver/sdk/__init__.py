"""The module SDK: what a ``Mid_<id>.py`` author writes against.

A module declares ``NAME``, ``CAPTION``, ``PARAMS`` (see :mod:`omserver.sdk.schema`)
and ``def run(ctx, params)``; ``ctx`` is a :class:`Context`.
"""

from omserver.sdk.context import Context, Results
from omserver.sdk.errors import ModuleError, ParamError, SchemaError
from omserver.sdk.results import HostResult, Target, cap_output
from omserver.sdk.schema import MASK, check_schema, mask_params, sensitive_values, validate_params

__all__ = [
    "MASK",
    "Context",
    "HostResult",
    "ModuleError",
    "ParamError",
    "Results",
    "SchemaError",
    "Target",
    "cap_output",
    "check_schema",
    "mask_params",
    "sensitive_values",
    "validate_params",
]
