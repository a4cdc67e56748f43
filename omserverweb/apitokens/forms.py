from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils.translation import gettext_lazy as _

LIFETIMES = [
    ("7", _("7 days")),
    ("30", _("30 days")),
    ("90", _("90 days")),
    ("365", _("1 year")),
    ("", _("never (until revoked)")),
]


class NewTokenForm(forms.Form):
    name = forms.CharField(
        label=_("Name"), max_length=100, help_text=_("What the token is for, e.g. a script.")
    )
    expires = forms.TypedChoiceField(
        label=_("Expires after"),
        choices=LIFETIMES,
        coerce=int,
        empty_value=None,
        required=False,
        initial="90",
    )

    @property
    def lifetime(self) -> timedelta | None:
        days = self.cleaned_data["expires"]
        return timedelta(days=days) if days else None
