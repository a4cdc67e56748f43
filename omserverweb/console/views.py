"""Console pages: thin views; the run itself goes through the REST API."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from omserver.vocabulary import JobStatus
from omserverweb.access.services import (
    listed_modules,
    runnable_modules,
    visible_categories,
    visible_servers,
)
from omserverweb.console import forms, skeleton
from omserverweb.console.daemon_status import module_load_status, zone_overview
from omserverweb.jobs.filters import JobFilterForm
from omserverweb.jobs.queries import visible_jobs
from omserverweb.modules.models import ModuleDefinition

log = logging.getLogger("omserverweb.console")


@login_required
@require_GET
def console(request: HttpRequest) -> HttpResponse:
    categories = list(visible_categories(request.user))
    servers = visible_servers(request.user).order_by("hostname")
    tree: dict[str, dict] = {}
    for category in categories:
        function = tree.setdefault(
            category.function.name, {"name": category.function.name, "apps": {}}
        )
        function["apps"][category.pk] = {"id": category.pk, "name": category.name, "servers": []}
    by_category = {app_id: app for f in tree.values() for app_id, app in f["apps"].items()}
    for server in servers:
        by_category[server.app_category_id]["servers"].append(
            {
                "id": server.pk,
                "hostname": server.hostname,
                "lan_ip": server.lan_ip,
                "enabled": server.enabled,
            }
        )
    data = {
        "tree": [{"name": f["name"], "apps": list(f["apps"].values())} for f in tree.values()],
        "modules": [
            {"id": m.pk, "name": m.name, "caption": m.caption, "params": m.params_schema}
            for m in runnable_modules(request.user)
        ],
        "confirmAbove": settings.CONFIG["web.confirm_above_hosts"],
    }
    return render(request, "console/console.html", {"console_data": data})


@login_required
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    form = JobFilterForm(request.GET or None, user=request.user)
    jobs = visible_jobs(request.user)
    if form.is_valid():
        jobs = form.apply(jobs)
    page = Paginator(jobs, 25).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "console/job_list.html",
        {"form": form, "page": page, "query": query.urlencode(), "statuses": JobStatus},
    )


@login_required
@require_GET
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(visible_jobs(request.user), pk=pk)
    return render(request, "console/job_detail.html", {"job": job})


@login_required
@require_GET
def module_list(request: HttpRequest) -> HttpResponse:
    status = module_load_status()
    rows = [(m, status.for_module(m.pk)) for m in listed_modules(request.user)]
    return render(
        request,
        "console/module_list.html",
        {"rows": rows, "daemon": status, "next_id": skeleton.next_free_id()},
    )


@login_required
@permission_required("inventory.view_zone", raise_exception=True)
@require_GET
def zone_list(request: HttpRequest) -> HttpResponse:
    return render(request, "console/zone_list.html", {"rows": zone_overview()})


@login_required
def module_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    _require_any(
        request, "modules.change_moduledefinition" if pk else "modules.add_moduledefinition"
    )
    module = get_object_or_404(ModuleDefinition, pk=pk) if pk else None
    form = forms.ModuleForm(request.POST or None, instance=module)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        log.info("module %s saved by %s", saved.pk, request.user.get_username())
        return redirect("console:modules")
    return render(request, "console/module_edit.html", {"form": form, "module": module})


@login_required
@require_GET
def module_skeleton(request: HttpRequest, pk: int) -> HttpResponse:
    _require_any(request, "modules.add_moduledefinition", "modules.change_moduledefinition")
    module = ModuleDefinition.objects.filter(pk=pk).first()
    response = HttpResponse(skeleton.render(pk, module), content_type="text/x-python")
    response["Content-Disposition"] = f'attachment; filename="Mid_{int(pk)}.py"'
    return response


def _require_any(request: HttpRequest, *perms: str) -> None:
    """PermissionDenied (a 403, logged) unless the user has one of ``perms``."""
    if not any(request.user.has_perm(perm) for perm in perms):
        log.warning("refused: user=%s needs %s", request.user.get_username(), " or ".join(perms))
        raise PermissionDenied
