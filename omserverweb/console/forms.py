from __future__ import annotations

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from omserver.sdk import SchemaError, check_schema
from omserverweb.jobs.models import Job, JobStatus
from omserverweb.modules.models import BACKENDS, ModuleDefinition


class JobFilterForm(forms.Form):
    module = forms.ModelChoiceField(
        ModuleDefinition.objects.all(), required=False, label=_("module")
    )
    user = forms.CharField(required=False, max_length=150, label=_("user"))
    status = forms.ChoiceField(
        choices=[("", "---------"), *JobStatus.choices], required=False, label=_("status")
    )
    host = forms.CharField(required=False, max_length=253, label=_("host"))
    date_from = forms.DateField(
        required=False, label=_("from"), widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label=_("to"), widget=forms.DateInput(attrs={"type": "date"})
    )

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


class ModuleForm(forms.ModelForm):
    backends = forms.MultipleChoiceField(
        choices=[(b, b) for b in BACKENDS],
        widget=forms.CheckboxSelectMultiple,
        label=_("supported backends"),
    )

    class Meta:
        model = ModuleDefinition
        fields = ["id", "name", "caption", "backends", "params_schema", "enabled"]
        widgets = {"params_schema": forms.Textarea(attrs={"rows": 12, "class": "mono"})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["id"].disabled = True  # the id names the Mid_ file

    def clean_params_schema(self) -> list:
        schema = self.cleaned_data["params_schema"]
        try:
            check_schema(schema)
        except SchemaError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return schema
