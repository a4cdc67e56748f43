"""Who may run what where: grants of modules on application categories to groups, and what
daemon client keys were refused outside their scopes."""

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


class KeyRefusal(models.Model):
    """A daemon request refused because it fell outside its client key's scope.

    Written by the daemon (``omserverweb.access.keyscopes``): a key asking for more
    than it was given may be a stolen one, or a tool that needs its scope widened.
    """

    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)
    client = models.CharField(_("client"), max_length=100, db_index=True)
    operation = models.CharField(_("operation"), max_length=20)
    reason = models.TextField(_("reason"))

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("key refusal")
        verbose_name_plural = _("key refusals")

    def __str__(self) -> str:
        return f"{self.client} {self.operation}: {self.reason}"
