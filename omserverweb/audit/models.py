"""Shell commands reported by the hosts, for the security-audit view."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class CommandEvent(models.Model):
    host = models.CharField(_("host"), max_length=253)
    user = models.CharField(_("user"), max_length=64)
    source = models.CharField(_("login source"), max_length=255, blank=True)
    cwd = models.CharField(_("working directory"), max_length=1024, blank=True)
    command = models.TextField(_("command"))
    event_time = models.DateTimeField(_("event time"))
    received_at = models.DateTimeField(_("received"), auto_now_add=True)
    seq = models.PositiveBigIntegerField(_("sequence number"))

    class Meta:
        ordering = ["-event_time", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["host", "seq"], name="uniq_event_host_seq"),
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
