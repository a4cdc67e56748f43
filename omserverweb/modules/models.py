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
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("module")
        verbose_name_plural = _("modules")

    def __str__(self) -> str:
        return f"{self.id} {self.name}"

    @property
    def filename(self) -> str:
        return f"Mid_{self.id}.py"
