from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from omserver.sdk import SchemaError, check_schema
from omserver.vocabulary import BACKENDS
from omserverweb import request_limits
from omserverweb.modules.models import ModuleDefinition


class ModuleForm(forms.ModelForm):
    backends = forms.MultipleChoiceField(
        choices=list(BACKENDS.items()),
        widget=forms.CheckboxSelectMultiple,
        label=_("supported backends"),
    )

    class Meta:
        model = ModuleDefinition
        fields = ["id", "name", "caption", "backends", "params_schema", "enabled"]
        widgets = {"params_schema": forms.Textarea(attrs={"rows": 12, "class": "mono"})}
        field_classes = {"params_schema": request_limits.JSONField}

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
