"""REST API: thin views over the models and the jobs service."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import ProtectedError, QuerySet
from django.shortcuts import get_object_or_404
from django.utils.translation import ngettext
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, permissions, status, views, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from omserver.vocabulary import ACTIVE_STATUSES, HostStatus
from omserverweb.access.services import (
    NotPermittedError,
    listed_modules,
    usable_module,
    usable_servers,
    visible_categories,
    visible_functions,
    visible_servers,
)
from omserverweb.api import serializers as s
from omserverweb.api.openapi import form_parameters
from omserverweb.inventory.models import AppCategory, FunctionCategory, Server
from omserverweb.jobs import services
from omserverweb.jobs.filters import JobFilterForm
from omserverweb.jobs.models import Job
from omserverweb.jobs.queries import job_changes, visible_jobs
from omserverweb.modules.models import ModuleDefinition


class ServiceUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "daemon_unavailable"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's, plus a 409 for deleting what others still use (a category with servers…)."""
    if isinstance(exc, ProtectedError):
        used_by = sorted({str(obj) for obj in exc.protected_objects})
        shown = ", ".join(used_by[:10]) + (" …" if len(used_by) > 10 else "")
        in_use = ngettext(
            "still in use by %(n)d record: %(records)s",
            "still in use by %(n)d records: %(records)s",
            len(used_by),
        )
        return Response(
            {"detail": in_use % {"n": len(used_by), "records": shown}},
            status=status.HTTP_409_CONFLICT,
        )
    return views.exception_handler(exc, context)


class ModelPermissions(permissions.DjangoModelPermissions):
    """Reads need a login (and see only what grants show); writes need model perms."""

    authenticated_users_only = True


class FunctionCategoryViewSet(viewsets.ModelViewSet):
    serializer_class = s.FunctionCategorySerializer
    permission_classes = [ModelPermissions]
    queryset = FunctionCategory.objects.none()  # for the permission class' model lookup

    def get_queryset(self) -> QuerySet[FunctionCategory]:
        return visible_functions(self.request.user)


class AppCategoryViewSet(viewsets.ModelViewSet):
    serializer_class = s.AppCategorySerializer
    permission_classes = [ModelPermissions]
    queryset = AppCategory.objects.none()

    def get_queryset(self) -> QuerySet[AppCategory]:
        return visible_categories(self.request.user)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("app_category", int, description="only this category's servers")
        ]
    )
)
class ServerViewSet(viewsets.ModelViewSet):
    serializer_class = s.ServerSerializer
    permission_classes = [ModelPermissions]
    queryset = Server.objects.none()

    def get_queryset(self) -> QuerySet[Server]:
        servers = visible_servers(self.request.user)
        category = self.request.query_params.get("app_category")
        if category and category.isdigit():
            servers = servers.filter(app_category_id=category)
        return servers


class ModuleViewSet(viewsets.ModelViewSet):
    serializer_class = s.ModuleSerializer
    permission_classes = [ModelPermissions]
    queryset = ModuleDefinition.objects.none()

    def get_queryset(self) -> QuerySet[ModuleDefinition]:
        return listed_modules(self.request.user)


@extend_schema_view(list=extend_schema(parameters=form_parameters(JobFilterForm)))
class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Jobs: POST runs a module; reads show the caller's jobs (or all with jobs.view_job)."""

    permission_classes = [permissions.IsAuthenticated]
    queryset = Job.objects.none()  # the model, for the OpenAPI document; reads are per user

    def get_queryset(self) -> QuerySet[Job]:
        filters = JobFilterForm(self.request.query_params, user=self.request.user)
        if not filters.is_valid():
            raise ValidationError(filters.errors)
        return filters.apply(visible_jobs(self.request.user))

    def get_serializer_class(self):
        if self.action == "create":
            return s.RunRequestSerializer
        if self.action == "retrieve":
            return s.JobDetailSerializer
        return s.JobSerializer

    @extend_schema(request=s.RunRequestSerializer, responses={201: s.JobSerializer})
    def create(self, request: Request) -> Response:
        run = s.RunRequestSerializer(data=request.data, context={"user": request.user})
        run.is_valid(raise_exception=True)
        data = run.validated_data
        job = _start(
            request,
            data["module"],
            data["servers"],
            data["params"],
            data.get("timeout"),
            data.get("rollout"),
        )
        return Response(s.JobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={
            202: s.JobSerializer,
            503: OpenApiResponse(s.ErrorSerializer, "the job's daemon cannot be reached"),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        job = self.get_object()
        if job.requested_by != request.user.get_username() and not request.user.has_perm(
            "jobs.change_job"
        ):
            raise PermissionDenied("only the job's owner or an operator may cancel it")
        if job.status in ACTIVE_STATUSES:
            try:
                services.cancel_job(job)
            except services.DaemonUnavailableError as exc:
                raise ServiceUnavailable(str(exc)) from exc
        job.refresh_from_db()
        return Response(s.JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.RerunSerializer, responses={201: s.JobSerializer})
    @action(detail=True, methods=["post"])
    def rerun(self, request: Request, pk: str) -> Response:
        """Run the job's module again, on all its hosts or the ``hosts`` given."""
        job = self.get_object()
        body = s.RerunSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        hosts = body.validated_data.get("hosts") or job.targets
        unknown = sorted(set(hosts) - set(job.targets))
        if unknown:
            raise ValidationError({"hosts": f"not targets of job {job.pk}: {', '.join(unknown)}"})
        # A module or host revoked, disabled or gone since is told like an unknown one.
        try:
            module = usable_module(request.user, job.module_id)
        except NotPermittedError as exc:
            raise ValidationError({"module": [str(exc)]}) from exc
        try:
            servers = usable_servers(request.user, module, hosts)
        except NotPermittedError as exc:
            raise ValidationError({"hosts": [str(exc)]}) from exc
        try:
            params = services.rerun_params(job, body.validated_data["params"])
        except services.JobRequestError as exc:
            raise ValidationError({exc.field: [str(exc)]}) from exc
        new = _start(request, module, servers, params, job.timeout, job.rollout)
        return Response(s.JobSerializer(new).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[
            OpenApiParameter("after", int, description="only what was written after this cursor")
        ],
        responses=s.JobChangesSerializer,
    )
    @action(detail=True, methods=["get"])
    def results(self, request: Request, pk: str) -> Response:
        """Hosts, steps and live output as they are written; poll with ``after`` = the
        last answer's ``cursor``, at once again while ``more`` says so.

        ``finished`` counts the hosts the module is done with; a step's row
        replaces the live output of that step shown so far.
        """
        job = get_object_or_404(self.get_queryset(), pk=pk)
        after = request.query_params.get("after", "0")
        if not after.isdigit():
            raise ValidationError({"after": "expected a whole number"})
        finished = job.results.exclude(status=HostStatus.RUNNING).count()
        return Response(
            {
                "status": job.status,
                "total": len(job.targets),
                "finished": finished,
                **job_changes(job.pk, int(after)),
            }
        )


def _start(
    request: Request,
    module: ModuleDefinition,
    servers: list[Server],
    params: dict[str, Any],
    timeout: float | None,
    rollout: dict[str, Any] | None,
) -> Job:
    """Start a job for the caller; a request the service refuses is a 400 naming the field."""
    try:
        return services.start_job(
            request.user, module, servers, params, timeout=timeout, rollout=rollout
        )
    except services.JobRequestError as exc:
        raise ValidationError({exc.field or "non_field_errors": [str(exc)]}) from exc
