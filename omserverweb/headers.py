"""No cache keeps an answer of the web: pages, API answers and the admin carry job
output, audit events and keys.

Every answer Django builds is marked ``no-store`` (with Django's never-cache
headers): a shared proxy keeps none, and the browser's back button asks the
server again, so after a logout another person at the same browser sees nothing.
Static files never come through here: nginx (or the staticfiles handler in
development) serves them with their own expiry.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import add_never_cache_headers


class NoStoreMiddleware:
    """``Cache-Control: no-store`` (and the rest of never-cache) on every answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        add_never_cache_headers(response)
        return response
