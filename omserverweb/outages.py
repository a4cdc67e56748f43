"""What the web answers while a dependency is down: a plain 503 naming it, never a stack.

A view that meets an unreachable database (or an unavailable daemon it did not
expect) ends here through ``DependencyDownMiddleware``; what fails outside a view
(a session saved after it) through ``server_error``, the project's 500 handler.
The REST API gets JSON, the console a page of its own that needs nothing but
the template engine: rendering it must not ask the database again. Django
drops a connection that failed at the end of the request, so when the
database is back the next request simply works.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.views import defaults

from omserver import client as daemon

log = logging.getLogger("omserverweb.outages")
RETRY_AFTER = 15  # seconds, for clients that read Retry-After


def down_from(exc: BaseException | None) -> str | None:
    """``database`` or ``daemon`` when ``exc`` says that one is down or unavailable."""
    if isinstance(exc, OperationalError | InterfaceError):
        return "database"
    if isinstance(exc, daemon.DaemonUnreachable | daemon.Unavailable):
        return "daemon"
    return None


def message(down: str) -> str:
    if down == "database":
        return _("the database is unreachable; try again shortly")
    return _("the master-control daemon is unavailable; try again shortly")


def outage_response(request: HttpRequest, down: str) -> HttpResponse:
    """A 503 naming what is down: JSON for the API, a page for the console."""
    text = message(down)
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": text, "down": [down]}, status=503)
    else:
        page = render_to_string("503.html", {"message": text, "down": down})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER)
    return response


class DependencyDownMiddleware:
    """A view that fails because the database or a daemon is away answers 503."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        down = down_from(exc)
        if down is None:
            return None
        log.error("%s %s: %s is down: %s", request.method, request.path, down, exc)
        return outage_response(request, down)


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 handler: a failure outside a view because a dependency is down is a 503."""
    down = down_from(sys.exc_info()[1])
    if down is not None:
        return outage_response(request, down)
    return defaults.server_error(request)
