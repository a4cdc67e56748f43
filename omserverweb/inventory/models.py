"""The inventory tree: function category → application category → server."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

# A Salt minion id and a host name share this alphabet; nothing a shell treats specially.
hostname_validator = RegexValidator(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252})$",
    _("Use letters, digits, dots, dashes and underscores."),
)


class FunctionCategory(models.Model):
    """What a server does, e.g. ``Linux.Web`` or ``Linux.Mysql``."""

    name = models.CharField(_("name"), max_length=100, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("function category")
        verbose_name_plural = _("function categories")

    def __str__(self) -> str:
        return self.name


class AppCategory(models.Model):
    """Which application a server serves, e.g. ``www.example.com``."""

    function = models.ForeignKey(
        FunctionCategory,
        on_delete=models.PROTECT,
        related_name="app_categories",
        verbose_name=_("function category"),
    )
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        ordering = ["function__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["function", "name"], name="uniq_app_category_name"),
        ]
        verbose_name = _("application category")
        verbose_name_plural = _("application categories")

    def __str__(self) -> str:
        return f"{self.function.name} / {self.name}"


class Server(models.Model):
    """A managed host, reached as a Salt minion (hostname) or over SSH (LAN IP)."""

    hostname = models.CharField(
        _("hostname (Salt minion id)"),
        max_length=253,
        unique=True,
        validators=[hostname_validator],
    )
    lan_ip = models.GenericIPAddressField(_("LAN IP"), unique=True)
    wan_ip = models.GenericIPAddressField(_("WAN IP"), null=True, blank=True)
    os = models.CharField(_("operating system"), max_length=100, blank=True)
    app_category = models.ForeignKey(
        AppCategory,
        on_delete=models.PROTECT,
        related_name="servers",
        verbose_name=_("application category"),
    )
    ssh_port = models.PositiveIntegerField(
        _("SSH port"), default=22, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    ssh_user = models.CharField(_("SSH user"), max_length=64, default="root")
    zone = models.CharField(_("zone"), max_length=64, default="default", db_index=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        ordering = ["hostname"]
        verbose_name = _("server")
        verbose_name_plural = _("servers")

    def __str__(self) -> str:
        return f"{self.hostname} ({self.lan_ip})"

    def as_target(self) -> dict[str, object]:
        """The structured target the daemon receives for this server."""
        return {
            "hostname": self.hostname,
            "lan_ip": self.lan_ip,
            "ssh_port": self.ssh_port,
            "ssh_user": self.ssh_user,
        }
