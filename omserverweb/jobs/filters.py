"""The job history's filters, one form for the console's list and the REST API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from omserverweb.access.services import User, listed_modules
from omserverweb.jobs.models import JOB_STATUS_CHOICES, Job
from omserverweb.modules.models import ModuleDefinition


class JobFilterForm(forms.Form):
    """The filters; its module choices are the modules the user sees listed."""

    module = forms.ModelChoiceField(
        ModuleDefinition.objects.none(), required=False, label=_("module")
    )
    user = forms.CharField(required=False, max_length=150, label=_("user"))
    status = forms.ChoiceField(
        choices=[("", "---------"), *JOB_STATUS_CHOICES], required=False, label=_("status")
    )
    host = forms.CharField(required=False, max_length=253, label=_("host"))
    date_from = forms.DateField(
        required=False, label=_("from"), widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label=_("to"), widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, data: Mapping[str, Any] | None, *, user: User) -> None:
        super().__init__(data)
        self.fields["module"].queryset = listed_modules(user)

    def apply(self, jobs: QuerySet[Job]) -> QuerySet[Job]:
        data = self.cleaned_data
        if data["module"]:
            jobs = jobs.filter(module=data["module"])
        if data["user"]:
            jobs = jobs.filter(requested_by=data["user"])
        if data["status"]:
            jobs = jobs.filter(status=data["status"])
        if data["host"]:
            jobs = jobs.filter(results__host=data["host"]).distinct()
        if data["date_from"]:
            jobs = jobs.filter(created_at__date__gte=data["date_from"])
        if data["date_to"]:
            jobs = jobs.filter(created_at__date__lte=data["date_to"])
        return jobs
