"""Who may run what where: grants of modules on application categories to groups."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import models
from django.utils.translation import gettext_lazy as _

from omserverweb.inventory.models import AppCategory
from omserverweb.modules.models import ModuleDefinition


class Grant(models.Model):
    """Members of ``group`` may run ``module`` on servers of ``app_category``.

    An empty module or category means "every one", so a team lead can be given
    all modules on their application in one row.
    """

    group = models.ForeignKey(
        Group, on_delete=models.CASCADE, related_name="grants", verbose_name=_("group")
    )
    module = models.ForeignKey(
        ModuleDefinition,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="grants",
        verbose_name=_("module (empty: every module)"),
    )
    app_category = models.ForeignKey(
        AppCategory,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="grants",
        verbose_name=_("application category (empty: every category)"),
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "module", "app_category"],
                name="uniq_grant",
            ),
        ]
        verbose_name = _("grant")
        verbose_name_plural = _("grants")

    def __str__(self) -> str:
        module = self.module or _("every module")
        where = self.app_category or _("every category")
        return f"{self.group}: {module} on {where}"
