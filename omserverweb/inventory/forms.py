"""The import form: which source, its text, and where rows that name no category go."""

from __future__ import annotations

import ipaddress
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.db import models
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from omserverweb.inventory.importing.ansible_inventory import parse_ansible
from omserverweb.inventory.importing.candidates import Candidate, SourceError
from omserverweb.inventory.importing.csv_source import parse_csv
from omserverweb.inventory.importing.plan import Plan
from omserverweb.inventory.importing.salt_keys import IpNetwork, parse_salt
from omserverweb.inventory.models import AppCategory
from omserverweb.request_limits import import_bytes


class Source(models.TextChoices):
    CSV = "csv", _("CSV")
    SALT = "salt", _("Salt accepted minion keys")
    ANSIBLE = "ansible", _("Ansible inventory (INI or YAML)")


def _text_area(rows: int) -> forms.Textarea:
    return forms.Textarea(attrs={"rows": rows, "class": "mono", "spellcheck": "false"})


class ImportForm(forms.Form):
    """The same form runs the dry run and Apply: Apply also sends the dry run's fingerprint."""

    source = forms.ChoiceField(
        label=_("source"), choices=Source.choices, initial=Source.CSV, widget=forms.RadioSelect
    )
    text = forms.CharField(
        label=_("data"),
        required=False,
        strip=False,
        widget=_text_area(12),
        help_text=_("CSV rows, the output of salt-key -L --out=json, or an Ansible inventory."),
    )
    upload = forms.FileField(
        label=_("or a file"),
        required=False,
        help_text=_("A file replaces the text above. UTF-8."),
    )
    salt_ips = forms.CharField(
        label=_("minion IP addresses (Salt)"),
        required=False,
        strip=False,
        widget=_text_area(6),
        help_text=_(
            "The output of salt --out=json '*' network.ip_addrs (or grains.item fqdn_ip4)."
        ),
    )
    salt_ips_upload = forms.FileField(label=_("or a file"), required=False)
    lan_network = forms.CharField(
        label=_("LAN network (Salt)"),
        required=False,
        max_length=43,
        help_text=_("e.g. 10.0.0.0/8: picks the LAN IP of a minion that has several addresses."),
    )
    default_category = forms.ModelChoiceField(
        AppCategory.objects.select_related("function"),
        label=_("default application category"),
        required=False,
        help_text=_("For new servers whose row names no category; existing servers keep theirs."),
    )
    fingerprint = forms.CharField(required=False, widget=forms.HiddenInput)

    candidates: list[Candidate]

    def clean_upload(self) -> str:
        return _read_upload(self.cleaned_data["upload"])

    def clean_salt_ips_upload(self) -> str:
        return _read_upload(self.cleaned_data["salt_ips_upload"])

    def clean_lan_network(self) -> IpNetwork | None:
        value = self.cleaned_data["lan_network"].strip()
        if not value:
            return None
        try:
            return ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise forms.ValidationError(_("Enter a network such as 10.0.0.0/8.")) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["text"] = _newlines(data.get("upload") or data.get("text", ""))
        data["salt_ips"] = _newlines(data.get("salt_ips_upload") or data.get("salt_ips", ""))
        if len(data["text"].encode()) + len(data["salt_ips"].encode()) > import_bytes():
            raise forms.ValidationError(_too_big())
        if not data["text"].strip():
            self.add_error("text", _("Paste the data or choose a file."))
        if not self.errors:
            try:
                self.candidates = self._parse(data)
            except SourceError as exc:
                raise forms.ValidationError(str(exc)) from None
        return data

    def _parse(self, data: dict[str, Any]) -> list[Candidate]:
        if data["source"] == Source.SALT:
            return parse_salt(data["text"], data["salt_ips"], data["lan_network"])
        if data["source"] == Source.ANSIBLE:
            return parse_ansible(data["text"])
        return parse_csv(data["text"])

    def for_apply(self, plan: Plan) -> ImportForm:
        """The same inputs, a file's text moved into the text box, and the plan's fingerprint."""
        data = self.cleaned_data
        return ImportForm(
            initial={
                "source": data["source"],
                "text": data["text"],
                "salt_ips": data["salt_ips"],
                "lan_network": str(data["lan_network"] or ""),
                "default_category": data["default_category"],
                "fingerprint": plan.fingerprint,
            }
        )


def _read_upload(upload: UploadedFile | None) -> str:
    if upload is None:
        return ""
    if upload.size > import_bytes():
        raise forms.ValidationError(_too_big())
    try:
        return upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise forms.ValidationError(_("The file is not UTF-8 text.")) from None


def _too_big() -> str:
    return _("The data is larger than %(limit)s.") % {"limit": filesizeformat(import_bytes())}


def _newlines(text: str) -> str:
    """One newline style, so that the text sent back with Apply plans the same."""
    return text.replace("\r\n", "\n").replace("\r", "\n")
