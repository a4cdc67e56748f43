"""Login throttling with django-axes: what failures count against, and the lockout answer.

Every password login of the web (the console's ``/accounts/login/`` and
``/admin/login/``) goes through Django's ``authenticate``, which axes' backend
guards; the REST API takes tokens or the console's session, never a password.
The ``web.login_failure_limit``-th wrong password within
``web.login_cooloff_minutes`` locks the login for that long, the right password
included; failures count per user name and per address as
``web.login_lockout_by`` says. axes keeps the counters (``AccessAttempt``),
every failure (``AccessFailureLog``) and every login (``AccessLog``), shown at
``/admin/axes/``; each refusal also leaves a log line. An administrator unlocks
by deleting the attempts there, or with ``manage.py axes_reset_username NAME``
or ``manage.py axes_reset_ip ADDRESS``.

The settings import this module, so axes (whose models need the apps loaded) is
imported inside the functions.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

log = logging.getLogger("omserverweb.lockout")

# web.login_lockout_by → axes' AXES_LOCKOUT_PARAMETERS: a list counts each item
# separately (either one locks); an inner list counts the combination.
LOCKOUT_PARAMETERS: dict[str, list[Any]] = {
    "user_or_address": ["username", "ip_address"],
    "user": ["username"],
    "address": ["ip_address"],
    "user_and_address": [["username", "ip_address"]],
}


def locked_until(request: HttpRequest, credentials: dict[str, Any] | None) -> datetime:
    """When the lock on this request's user name or address ends.

    A counter locks while the failures in the window reach the limit, so it ends
    one cool-off after the failure that brought the newest ones to the limit.
    """
    from axes.handlers.proxy import AxesProxyHandler  # axes' models need the apps loaded
    from axes.helpers import get_cool_off, get_failure_limit

    cool_off = get_cool_off(request)
    limit = get_failure_limit(request, credentials)
    handler = AxesProxyHandler.get_implementation()
    ends = []
    for attempts in handler.get_user_attempts(request, credentials):
        failures = 0
        for attempt in attempts.order_by("-attempt_time"):
            failures += attempt.failures_since_start
            if failures >= limit:
                ends.append(attempt.attempt_time + cool_off)
                break
    return max(ends, default=timezone.now() + cool_off)


def locked_out(
    request: HttpRequest, response: HttpResponse | None, credentials: dict[str, Any] | None
) -> HttpResponse:
    """axes' lockout answer (``AXES_LOCKOUT_CALLABLE``): a 429 saying until when."""
    from axes.helpers import get_client_username, get_failure_limit

    until = locked_until(request, credentials)
    log.warning(
        "login locked out: user=%s address=%s path=%s until %s",
        get_client_username(request, credentials),
        getattr(request, "axes_ip_address", None),
        request.path,
        until.isoformat(timespec="seconds"),
    )
    context = {"until": until, "limit": get_failure_limit(request, credentials)}
    answer = render(request, "registration/locked_out.html", context, status=429)
    answer["Retry-After"] = str(max(1, math.ceil((until - timezone.now()).total_seconds())))
    return answer
