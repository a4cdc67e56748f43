"""What the OpenAPI document says beyond the views' own answers: the errors every
operation can give, in DRF's shapes, so that a client (and schemathesis) finds each
status code it meets described; a filter form's fields as query parameters."""

from __future__ import annotations

from typing import Any

from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

ERROR = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
# A field's name with its messages, ``non_field_errors``, or ``detail`` for a body
# that is no JSON at all.
VALIDATION_ERROR = {
    "type": "object",
    "additionalProperties": {},
    "description": "each field in error with its messages, or detail",
}


def _response(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def add_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A drf-spectacular postprocessing hook: 400 where input is read, 401 and 403
    everywhere, 404 on an object's path, 409 on a delete (what is still in use)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR)  # the views' ErrorSerializer, when one names it
    schemas["ValidationError"] = VALIDATION_ERROR
    for path, operations in result["paths"].items():
        for method, operation in operations.items():
            errors = {
                "401": _response("no credentials, or credentials not valid", "Error"),
                "403": _response("not permitted to the caller", "Error"),
            }
            reads_query = any(p["in"] == "query" for p in operation.get("parameters", []))
            if "requestBody" in operation or reads_query:
                errors["400"] = _response("the request is not valid", "ValidationError")
            if "{" in path:
                errors["404"] = _response("no such object visible to the caller", "Error")
            if method == "delete":
                errors["409"] = _response("still in use by other records", "Error")
            responses = operation.setdefault("responses", {})
            for code, response in errors.items():
                responses.setdefault(code, response)
    return result


def form_parameters(form: type[forms.Form]) -> list[OpenApiParameter]:
    """A filter form's fields as the query parameters of a list, said once in the form."""
    return [_parameter(name, field) for name, field in form.base_fields.items()]


def _parameter(name: str, field: forms.Field) -> OpenApiParameter:
    kind: Any = OpenApiTypes.STR
    enum = None
    if isinstance(field, forms.ModelChoiceField):
        kind = OpenApiTypes.INT
    elif isinstance(field, forms.ChoiceField):
        enum = [value for value, _ in field.choices if value]
    elif isinstance(field, forms.DateField):
        kind = OpenApiTypes.DATE
    return OpenApiParameter(name, kind, description=str(field.label or name), enum=enum)
