"""Audit pages and the hosts' ingest endpoint: thin views over the audit services."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from omserverweb import request_limits
from omserverweb.audit import forms, ingest, rejections, services, tokens
from omserverweb.audit.models import AlertRule, CommandEvent, IngestToken
from omserverweb.inventory.models import AppCategory, Server

log = logging.getLogger("omserverweb.audit")

VIEW = "audit.view_commandevent"
LIVE_LIMIT = 200


@request_limits.allow_body(request_limits.audit_batch_bytes)
@csrf_exempt
@require_POST
def ingest_events(request: HttpRequest) -> HttpResponse:
    """POST /api/audit/events/ from a host's shipper, with ``Authorization: Bearer <token>``."""
    coverage = tokens.authenticate(request.headers.get("Authorization", ""))
    if coverage is None:
        response = JsonResponse({"error": "missing, wrong or revoked ingest token"}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="omserver-audit"'
        return response
    try:
        events = ingest.parse(request.body, coverage)
    except ingest.BatchError as exc:
        rejections.record(coverage, exc)
        return JsonResponse({"error": str(exc)}, status=400)
    stored = ingest.store(events)
    return JsonResponse(
        {"received": stored.received, "stored": stored.stored, "duplicates": stored.duplicates}
    )


def _filtered(request: HttpRequest):
    form = forms.EventFilterForm(request.GET)  # every field is optional: empty means all
    events = CommandEvent.objects.all()
    if form.is_valid():
        return form, form.to_filter().apply(events)
    return form, events.none()


def _tree() -> list[dict]:
    tree: dict[str, list[dict]] = {}
    servers = Server.objects.select_related("app_category__function").order_by("hostname")
    by_category: dict[int, list[Server]] = {}
    for server in servers:
        by_category.setdefault(server.app_category_id, []).append(server)
    for category in AppCategory.objects.select_related("function"):
        tree.setdefault(category.function.name, []).append(
            {"category": category, "servers": by_category.get(category.pk, [])}
        )
    return [{"function": name, "apps": apps} for name, apps in tree.items()]


@permission_required(VIEW, raise_exception=True)
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    form, events = _filtered(request)
    rules = services.active_rules()
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    selected = {
        "server": set(request.GET.getlist("server")),
        "category": set(request.GET.getlist("category")),
    }
    return render(
        request,
        "audit/index.html",
        {
            "form": form,
            "page": page,
            "rows": services.flag(page, rules),
            "alert_count": events.filter(services.alert_q(rules)).count(),
            "tree": _tree(),
            "selected": selected,
            "query": query.urlencode(),
            "tail_from": services.settled_id(),
            "rejected": rejections.by_host(),
        },
    )


@permission_required(VIEW, raise_exception=True)
@require_GET
def live(request: HttpRequest) -> HttpResponse:
    """Events above ``after`` for the live tail, oldest first, and the next ``cursor``."""
    form, events = _filtered(request)
    if not form.is_valid():
        return HttpResponseBadRequest(form.errors.as_json(), content_type="application/json")
    rows = list(events.order_by("id")[:LIVE_LIMIT])
    flagged = services.flag(rows, services.active_rules())
    return JsonResponse(
        {
            "cursor": services.tail_cursor(form.cleaned_data["after"] or 0, rows, LIVE_LIMIT),
            "events": [
                {
                    "id": e.pk,
                    "time": e.event_time.isoformat(),
                    "host": e.host,
                    "user": e.user,
                    "source": e.source,
                    "cwd": e.cwd,
                    "command": e.command,
                    "alerts": names,
                }
                for e, names in flagged
            ],
        }
    )


@permission_required(VIEW, raise_exception=True)
@require_GET
def export_csv(request: HttpRequest) -> HttpResponse:
    _, events = _filtered(request)
    response = StreamingHttpResponse(
        services.csv_rows(events.order_by("event_time", "id")), content_type="text/csv"
    )
    response["Content-Disposition"] = 'attachment; filename="audit-events.csv"'
    return response


@permission_required(VIEW, raise_exception=True)
def verify(request: HttpRequest) -> HttpResponse:
    problems = services.verify_all() if request.method == "POST" else None
    return render(request, "audit/verify.html", {"problems": problems})


@permission_required(VIEW, raise_exception=True)
@require_GET
def rule_list(request: HttpRequest) -> HttpResponse:
    return render(request, "audit/rules.html", {"rules": AlertRule.objects.all()})


@permission_required("audit.change_alertrule", raise_exception=True)
def rule_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    rule = get_object_or_404(AlertRule, pk=pk) if pk else None
    form = forms.AlertRuleForm(request.POST or None, instance=rule)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        log.info("alert rule %s saved by %s", saved.pk, request.user.get_username())
        return redirect("audit:rules")
    return render(request, "audit/rule_edit.html", {"form": form, "rule": rule})


@permission_required("audit.delete_alertrule", raise_exception=True)
@require_POST
def rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    get_object_or_404(AlertRule, pk=pk).delete()
    return redirect("audit:rules")


@permission_required("audit.add_ingesttoken", raise_exception=True)
def token_list(request: HttpRequest) -> HttpResponse:
    form = forms.TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token, clear = tokens.issue(
            form.cleaned_data["name"],
            request.user.get_username(),
            server=form.cleaned_data["server"],
            app_category=form.cleaned_data["app_category"],
        )
        log.info("ingest token %s issued by %s", token.pk, request.user.get_username())
        return render(request, "audit/token_created.html", {"token": token, "clear": clear})
    items = IngestToken.objects.select_related("server", "app_category__function")
    return render(request, "audit/tokens.html", {"form": form, "tokens": items})


@permission_required("audit.change_ingesttoken", raise_exception=True)
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(IngestToken, pk=pk)
    tokens.revoke(token)
    log.info("ingest token %s revoked by %s", token.pk, request.user.get_username())
    messages.success(request, _("Token %(name)s revoked.") % {"name": token.name})
    return redirect("audit:tokens")
