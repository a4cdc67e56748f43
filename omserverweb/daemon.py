"""The web console's connection to the master-control daemon."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from omserver.client import Client


def daemon_address() -> str:
    return settings.DAEMON_ADDRESS


def daemon_client() -> Client:
    """The web console's client: its own id and key; one per process, shared by threads."""
    return _client(settings.DAEMON_ADDRESS, settings.DAEMON_CLIENT_ID, settings.DAEMON_CLIENT_KEY)


@lru_cache(maxsize=4)
def _client(address: str, client_id: str, key: str) -> Client:
    return Client(address, client_id, key)
