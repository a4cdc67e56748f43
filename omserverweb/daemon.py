"""The web console's connection to the master-control daemon."""

from __future__ import annotations

from django.conf import settings

from omserver.client import Client


def daemon_address() -> str:
    return settings.CONFIG["daemon.address"]


def daemon_client() -> Client:
    """A client speaking as the web console's own id and key."""
    return Client(daemon_address(), settings.DAEMON_CLIENT_ID, settings.DAEMON_CLIENT_KEY)
