"""Request body parsers for the REST API."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

from omserverweb import request_limits


class JSONParser(parsers.JSONParser):
    """DRF's, with the depth limit: a body nested deeper than ``web.max_json_depth`` is
    a 400 naming it (DRF's own met Python's decoder limit as a 500 or a vague 400).
    Its size was checked before (``request_limits.BodySizeLimitMiddleware``)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        body = stream.read() if stream is not None else b""
        parse_constant = json.strict_constant if self.strict else None
        try:
            return request_limits.loads(body.decode(encoding), parse_constant=parse_constant)
        except ValueError as exc:  # request_limits.BodyError, malformed JSON or text
            raise ParseError(f"JSON parse error - {exc}") from None
