"""The inventory import page: a dry run shows the plan, and only Apply writes it."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from omserverweb import request_limits
from omserverweb.inventory.forms import ImportForm
from omserverweb.inventory.importing.plan import Plan, StalePlanError, apply_plan, plan_import

log = logging.getLogger("omserverweb.inventory")

TEMPLATE = "inventory/import.html"


@request_limits.allow_body(request_limits.import_request_bytes)
@login_required
@permission_required(("inventory.add_server", "inventory.change_server"), raise_exception=True)
@require_http_methods(["GET", "POST"])
def import_servers(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    if not form.is_valid():
        return render(request, TEMPLATE, {"form": form})
    if "apply" in request.POST:
        return _apply(request, form)
    plan = plan_import(form.candidates, form.cleaned_data["default_category"])
    return _show_plan(request, form, plan)


def _apply(request: HttpRequest, form: ImportForm) -> HttpResponse:
    try:
        plan = apply_plan(
            form.candidates, form.cleaned_data["default_category"], form.cleaned_data["fingerprint"]
        )
    except StalePlanError as changed:
        messages.warning(
            request,
            _("The plan changed since the dry run, so nothing was written. Check it and apply."),
        )
        return _show_plan(request, form, changed.plan)
    counts = {"created": len(plan.creates), "updated": len(plan.updates)}
    log.info(
        "inventory import by %s: %d created, %d updated, %d rows refused",
        request.user.get_username(),
        counts["created"],
        counts["updated"],
        len(plan.failed),
    )
    applied = ngettext(
        "Import applied: %(created)d server created, %(updated)d updated.",
        "Import applied: %(created)d servers created, %(updated)d updated.",
        counts["created"],
    )
    messages.success(request, applied % counts)
    return redirect("console:inventory-import")


def _show_plan(request: HttpRequest, form: ImportForm, plan: Plan) -> HttpResponse:
    return render(request, TEMPLATE, {"form": form.for_apply(plan), "plan": plan})
