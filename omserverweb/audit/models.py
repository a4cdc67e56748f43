"""Shell commands reported by the hosts, the tokens they report with, alert rules,
and the heads of the hash chains that make the record tamper-evident."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from omserverweb.inventory.models import AppCategory, Server

HASH_LENGTH = 64  # sha256, hex
KEY_ID_LENGTH = 16  # chainkeys.key_id


class CommandEvent(models.Model):
    host = models.CharField(_("host"), max_length=253)
    user = models.CharField(_("user"), max_length=64)
    source = models.CharField(_("login source"), max_length=255, blank=True)
    cwd = models.CharField(_("working directory"), max_length=1024, blank=True)
    command = models.TextField(_("command"))
    event_time = models.DateTimeField(_("event time"))
    received_at = models.DateTimeField(_("received"), auto_now_add=True)
    seq = models.PositiveBigIntegerField(_("sequence number"))
    # Position in the host's chain, and the hashes linking it to the one before. Ingest
    # sets them; a row written any other way has none, and the chain check names it.
    chain_pos = models.PositiveBigIntegerField(_("chain position"), null=True, blank=True)
    prev_hash = models.CharField(_("previous hash"), max_length=HASH_LENGTH, blank=True)
    chain_hash = models.CharField(_("hash"), max_length=HASH_LENGTH, blank=True)
    # The chain key the hash is an HMAC under; empty for a link made before the keys.
    chain_key = models.CharField(_("chain key"), max_length=KEY_ID_LENGTH, blank=True)

    class Meta:
        ordering = ["-event_time", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["host", "seq"], name="uniq_event_host_seq"),
            models.UniqueConstraint(fields=["host", "chain_pos"], name="uniq_event_host_pos"),
        ]
        indexes = [
            models.Index(fields=["host", "-event_time"], name="event_host_time_idx"),
            models.Index(fields=["-event_time"], name="event_time_idx"),
            models.Index(fields=["user", "-event_time"], name="event_user_idx"),
        ]
        verbose_name = _("command event")
        verbose_name_plural = _("command events")

    def __str__(self) -> str:
        return f"{self.host} {self.user}: {self.command[:60]}"


class ChainHead(models.Model):
    """The end of one hash chain (``host:<name>`` or ``jobs``).

    Writers lock this row, so links are made one at a time per chain even with
    several web workers or daemons on one database. ``anchor_hash`` is the
    ``prev_hash`` the first kept record must carry: the genesis value, or the
    hash of the last record retention pruned. ``legacy_length`` links (ending
    with ``legacy_hash``) were made before the chain keys, unkeyed. ``seal`` (an
    HMAC under key ``seal_key``) vouches for the anchor and the legacy part; a
    head without one has neither.
    """

    scope = models.CharField(_("chain"), max_length=300, unique=True)
    length = models.PositiveBigIntegerField(_("links made"), default=0)
    last_hash = models.CharField(_("last hash"), max_length=HASH_LENGTH)
    anchor_pos = models.PositiveBigIntegerField(_("first kept position"), default=1)
    anchor_hash = models.CharField(_("anchor hash"), max_length=HASH_LENGTH)
    legacy_length = models.PositiveBigIntegerField(_("unkeyed links"), default=0)
    legacy_hash = models.CharField(_("last unkeyed hash"), max_length=HASH_LENGTH, blank=True)
    seal = models.CharField(_("seal"), max_length=HASH_LENGTH, blank=True)
    seal_key = models.CharField(_("seal key"), max_length=KEY_ID_LENGTH, blank=True)

    class Meta:
        verbose_name = _("chain head")
        verbose_name_plural = _("chain heads")

    def __str__(self) -> str:
        return f"{self.scope} @{self.length}"


class IngestToken(models.Model):
    """A host's (or an application category's) credential for reporting commands.

    Only the sha256 of the token is stored: tokens are 256 random bits, so a
    fast hash is as safe as a slow one and keeps the per-batch check cheap.
    """

    name = models.CharField(_("name"), max_length=100)
    digest = models.CharField(_("token digest"), max_length=HASH_LENGTH, unique=True)
    prefix = models.CharField(_("token prefix"), max_length=12)
    server = models.ForeignKey(
        Server,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("server"),
    )
    app_category = models.ForeignKey(
        AppCategory,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("application category"),
    )
    created_by = models.CharField(_("created by"), max_length=150)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(server__isnull=True) ^ models.Q(app_category__isnull=True),
                name="ingest_token_one_scope",
            ),
        ]
        verbose_name = _("ingest token")
        verbose_name_plural = _("ingest tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def scope(self) -> str:
        return str(self.server.hostname if self.server_id else self.app_category)


def validate_pattern(value: str) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValidationError(
            _("Not a valid regular expression: %(error)s"), params={"error": exc}
        ) from None


class AlertRule(models.Model):
    """A regular expression that flags matching commands in the console."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    pattern = models.CharField(_("pattern"), max_length=500, validators=[validate_pattern])
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")

    def __str__(self) -> str:
        return self.name


class RejectedEvent(models.Model):
    """An event a host sent that ingest refused, so that the console shows it.

    Its agent keeps it and sends it again now and then; once a resend is stored
    (the cause fixed on the server: the token's coverage, the inventory, the
    clock) the row goes.
    """

    host = models.CharField(_("host"), max_length=253)
    seq = models.PositiveBigIntegerField(_("sequence number"))
    token = models.ForeignKey(
        IngestToken, on_delete=models.CASCADE, related_name="+", verbose_name=_("ingest token")
    )
    reason = models.CharField(_("reason"), max_length=500)
    first_at = models.DateTimeField(_("first refused"), auto_now_add=True)
    last_at = models.DateTimeField(_("last refused"))
    attempts = models.PositiveIntegerField(_("attempts"), default=1)

    class Meta:
        ordering = ["host", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["host", "seq"], name="uniq_rejected_host_seq"),
        ]
        verbose_name = _("rejected event")
        verbose_name_plural = _("rejected events")

    def __str__(self) -> str:
        return f"{self.host} #{self.seq}: {self.reason}"
