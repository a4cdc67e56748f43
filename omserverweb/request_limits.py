"""How large and how deeply nested a request body may be: the one place for those limits.

The size of every request is checked from its Content-Length by
:class:`BodySizeLimitMiddleware` before anything reads the body (Django reads
no more than Content-Length, so the header cannot lie its way past); a view
that takes more (an import, an audit batch) says so with :func:`allow_body`.
Every JSON the web decodes from a request goes through :func:`loads`, which
refuses a document nested deeper than ``web.max_json_depth``: a deep one is a
400 naming the limit, not a ``RecursionError`` (a 500) in a decoder or in
whatever walks the value later.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from omserver.protocol.limits import nesting_depth

# Form encoding can triple an import's text (a percent-escape per byte) when the
# import page posts it back for Apply; the rest of the form is small.
IMPORT_ENCODING_FACTOR = 3
FORM_OVERHEAD = 64 * 1024

View = TypeVar("View", bound=Callable[..., HttpResponse])


class BodyError(ValueError):
    """A request body is refused; the message names the limit it broke."""

    status = 400


class BodyTooLargeError(BodyError):
    status = 413


def max_json_depth() -> int:
    return settings.MAX_JSON_DEPTH


def body_bytes() -> int:
    """What any request may carry unless its view allows more."""
    return settings.MAX_BODY_BYTES


def import_bytes() -> int:
    """The inventory import's data (text and uploads together)."""
    return settings.MAX_IMPORT_BYTES


def import_request_bytes() -> int:
    """The inventory import page's whole request: its data, form-encoded, and the form."""
    return import_request_limit(import_bytes())


def import_request_limit(data_bytes: int) -> int:
    return IMPORT_ENCODING_FACTOR * data_bytes + FORM_OVERHEAD


def audit_batch_bytes() -> int:
    return settings.AUDIT_MAX_BATCH_BYTES


def too_large(limit: int) -> BodyTooLargeError:
    return BodyTooLargeError(_("request body larger than %(limit)s") % {"limit": _size(limit)})


def too_deep(limit: int) -> BodyError:
    return BodyError(_("JSON nested deeper than %(limit)d levels") % {"limit": limit})


def _size(limit: int) -> str:
    return f"{filesizeformat(limit)} ({limit} bytes)"


def loads(text: str | bytes, **kwargs: Any) -> Any:
    """``json.loads``, refusing (:class:`BodyError`) a document nested too deeply.

    Malformed JSON raises ``json.JSONDecodeError`` (or ``UnicodeDecodeError``) as usual.
    """
    try:
        value = json.loads(text, **kwargs)
    except RecursionError:  # deeper than the decoder itself goes
        raise too_deep(max_json_depth()) from None
    return _shallow(value)


def raw_decode(text: str, position: int) -> tuple[Any, int]:
    """``JSONDecoder().raw_decode`` (one document of several), with the same depth limit."""
    try:
        value, end = json.JSONDecoder().raw_decode(text, position)
    except RecursionError:
        raise too_deep(max_json_depth()) from None
    return _shallow(value), end


def _shallow(value: Any) -> Any:
    limit = max_json_depth()
    if nesting_depth(value, limit) > limit:
        raise too_deep(limit)
    return value


class DepthLimitedDecoder(json.JSONDecoder):
    """For Django's JSON form fields: a document nested too deeply reads as malformed
    (so that a form shown again with its errors does not decode it unbounded)."""

    def decode(self, s: str, *args: Any) -> Any:
        try:
            return loads(s)
        except BodyError as exc:
            raise json.JSONDecodeError(str(exc), s, 0) from None


class JSONField(forms.JSONField):
    """A form's JSON field with the depth limit, whose error names it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{**kwargs, "decoder": DepthLimitedDecoder})

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and not self.disabled:
            try:
                loads(value)
            except BodyError as exc:
                raise forms.ValidationError(str(exc), code="invalid") from None
            except ValueError:
                pass  # malformed: the field's own message says so
        return super().to_python(value)


def allow_body(limit: Callable[[], int]) -> Callable[[View], View]:
    """Let a view take bodies up to ``limit()`` bytes instead of ``web.max_body_bytes``."""

    def mark(view: View) -> View:
        view.max_body_bytes = limit  # type: ignore[attr-defined]
        return view

    return mark


def content_length(request: HttpRequest) -> int:
    """The body's size as Django will read it (an absent or bad header reads nothing)."""
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


class BodySizeLimitMiddleware:
    """A request larger than its view allows is a 413 naming the limit, before it is read.

    It sits before CSRF, whose check reads a form's body.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., HttpResponse], *args: Any
    ) -> HttpResponse | None:
        limit = getattr(view, "max_body_bytes", body_bytes)()
        if content_length(request) <= limit:
            return None
        return refusal(request, too_large(limit))


def refusal(request: HttpRequest, error: BodyError) -> HttpResponse:
    """The answer to a refused body: JSON for the API, plain text for the console."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": str(error)}, status=error.status)
    return HttpResponse(str(error), content_type="text/plain; charset=utf-8", status=error.status)
