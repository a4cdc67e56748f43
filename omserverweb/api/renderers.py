"""The REST API's renderers: JSON, and DRF's browsable HTML pages under the site's
Content-Security-Policy."""

from __future__ import annotations

from typing import Any

from csp.constants import UNSAFE_INLINE
from rest_framework import renderers


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """DRF's HTML pages of the API, the one place where inline style is let through.

    DRF's templates style with ``style`` attributes and a ``<style>`` element of their
    own; rewriting them would fork DRF. Scripts on these pages stay as strict as
    everywhere: only the site's own files run.
    """

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> str:
        response = (renderer_context or {}).get("response")
        if response is not None:
            response._csp_update = {"style-src": [UNSAFE_INLINE]}
        return super().render(data, accepted_media_type, renderer_context)
