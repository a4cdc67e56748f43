from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from omserverweb.audit.models import AlertRule
from omserverweb.audit.services import EventFilter
from omserverweb.inventory.models import AppCategory, Server

# The browser's date and time picker; it sends "2026-11-21T10:00", which the field reads.
LOCAL_TIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class EventFilterForm(forms.Form):
    server = forms.ModelMultipleChoiceField(
        Server.objects.all(), required=False, label=_("servers")
    )
    category = forms.ModelMultipleChoiceField(
        AppCategory.objects.all(), required=False, label=_("categories")
    )
    user = forms.CharField(label=_("user"), max_length=64, required=False)
    since = forms.DateTimeField(label=_("from"), required=False, widget=LOCAL_TIME)
    until = forms.DateTimeField(label=_("until"), required=False, widget=LOCAL_TIME)
    q = forms.CharField(label=_("command contains"), max_length=200, required=False)
    alerts = forms.BooleanField(label=_("alerts only"), required=False)
    after = forms.IntegerField(min_value=0, required=False, widget=forms.HiddenInput)

    def to_filter(self) -> EventFilter:
        data = self.cleaned_data
        return EventFilter(
            servers=[s.pk for s in data["server"]],
            categories=[c.pk for c in data["category"]],
            user=data["user"],
            since=data["since"],
            until=data["until"],
            text=data["q"],
            alerts_only=data["alerts"],
            after=data["after"] or 0,
        )


class TokenForm(forms.Form):
    name = forms.CharField(label=_("name"), max_length=100)
    server = forms.ModelChoiceField(Server.objects.all(), required=False, label=_("server"))
    app_category = forms.ModelChoiceField(
        AppCategory.objects.all(), required=False, label=_("or application category")
    )

    def clean(self) -> dict:
        data = super().clean()
        if bool(data.get("server")) == bool(data.get("app_category")):
            raise ValidationError(_("Choose either one server or one application category."))
        return data


class AlertRuleForm(forms.ModelForm):
    class Meta:
        model = AlertRule
        fields = ["name", "pattern", "enabled"]
