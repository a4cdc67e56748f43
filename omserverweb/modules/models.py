"""Task module definitions: what the console offers; the code is a Mid_<id>.py file."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from omserver.vocabulary import BACKENDS


def default_backends() -> list[str]:
    return list(BACKENDS)


class ModuleDefinition(models.Model):
    """One task module; its numeric id names the file ``Mid_<id>.py``."""

    id = models.PositiveIntegerField(
        _("module id"),
        primary_key=True,
        validators=[MinValueValidator(1000), MaxValueValidator(999_999)],
    )
    name = models.CharField(_("name"), max_length=100)
    caption = models.TextField(_("caption"), blank=True)
    backends = models.JSONField(_("supported backends"), default=default_backends)
    params_schema = models.JSONField(_("parameter schema"), default=list, blank=True)
    # Runs only once an operator enabled it (omserverweb.modules.services.enable_module).
    enabled = models.BooleanField(_("enabled"), default=False)
    # What the daemons last reported of the Mid_ file (omserver.modules.registry).
    file_hash = models.CharField(_("file SHA-256"), max_length=64, blank=True)
    file_schema = models.JSONField(_("file's parameter schema"), null=True, blank=True)
    load_error = models.TextField(_("load error"), blank=True)
    reported_at = models.DateTimeField(_("reported"), null=True, blank=True)
    # Set when the file's schema changed after it was enabled: disabled until enabled again.
    schema_changed = models.BooleanField(_("schema changed"), default=False)
    enabled_hash = models.CharField(_("SHA-256 when enabled"), max_length=64, blank=True)
    enabled_by = models.CharField(_("enabled by"), max_length=150, blank=True)
    enabled_at = models.DateTimeField(_("enabled at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("module")
        verbose_name_plural = _("modules")
        permissions = [("enable_moduledefinition", _("Can enable or disable a module"))]

    def __str__(self) -> str:
        return f"{self.id} {self.name}"

    @property
    def review_status(self) -> str:
        """``enabled``, ``schema_changed``, ``new`` (never enabled) or ``disabled``."""
        if self.enabled:
            return "enabled"
        if self.schema_changed:
            return "schema_changed"
        return "new" if self.enabled_at is None else "disabled"

    @property
    def filename(self) -> str:
        return f"Mid_{self.id}.py"
