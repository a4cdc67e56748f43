"""A user's own API tokens: list, create (shown once), revoke. Thin views over the service."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from omserverweb.apitokens import services
from omserverweb.apitokens.forms import NewTokenForm

log = logging.getLogger("omserverweb.apitokens")


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    form = NewTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token, clear = services.issue(request.user, form.cleaned_data["name"], form.lifetime)
        log.info("API token %s issued to %s", token.pk, request.user.get_username())
        return render(request, "apitokens/token_created.html", {"token": token, "clear": clear})
    tokens = services.owned_by(request.user)
    return render(request, "apitokens/tokens.html", {"form": form, "tokens": tokens})


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    # Another user's token is as missing as one that never existed.
    token = get_object_or_404(services.owned_by(request.user), pk=pk)
    services.revoke(token)
    log.info("API token %s revoked by %s", token.pk, request.user.get_username())
    messages.success(request, _("Token %(name)s revoked.") % {"name": token.name})
    return redirect("apitokens:tokens")
