"""The inventory tree: function category → application category → server."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from omserver.protocol.wire import parse_address
from omserver.vocabulary import BACKENDS
from omserverweb.secrets import open_sealed, seal

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


DEFAULT_ZONE = "default"


class Zone(models.Model):
    """A daemon beside one Salt master or Ansible control node, and the servers it runs.

    A server whose zone is not registered here belongs to the default zone: the
    daemon in the web's own settings. The web's client key for the zone's
    daemon is kept sealed with the web's secret key, never shown again.
    """

    name = models.CharField(
        _("name"),
        max_length=64,
        unique=True,
        validators=[hostname_validator],
        help_text=_("What servers name in their zone field, e.g. dc2."),
    )
    address = models.CharField(
        _("daemon address"), max_length=255, help_text=_("host:port of the zone's daemon")
    )
    client_id = models.CharField(
        _("client id"),
        max_length=100,
        default="web",
        help_text=_("The web console's client id at that daemon (omserver keys add NAME)."),
    )
    sealed_key = models.TextField(_("client key (sealed)"), blank=True, editable=False)
    backend = models.CharField(_("backend"), max_length=20, choices=list(BACKENDS.items()))
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("zone")
        verbose_name_plural = _("zones")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            parse_address(self.address)
        except ValueError as exc:
            raise ValidationError({"address": str(exc)}) from exc
        if self.name == DEFAULT_ZONE:
            raise ValidationError(
                {"name": _("The default zone is the daemon in the web's settings.")}
            )

    @property
    def client_key(self) -> str:
        """The key, or "" when it cannot be opened (the web's secret key changed)."""
        return open_sealed(self.sealed_key)

    @client_key.setter
    def client_key(self, key: str) -> None:
        self.sealed_key = seal(key)


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
    zone = models.CharField(
        _("zone"),
        max_length=64,
        default=DEFAULT_ZONE,
        db_index=True,
        help_text=_("A registered zone's name; any other is run by the default daemon."),
    )
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
