"""The web console's connection to the master-control daemon."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from omserver.client import Client

PAGE_TIMEOUT = 30.0  # seconds a page waits for the daemon's answer


def daemon_address() -> str:
    return settings.DAEMON_ADDRESS


def daemon_client(timeout: float = PAGE_TIMEOUT) -> Client:
    """The web console's client: its own id and key; one per process and timeout.

    A client is safe to share between threads and keeps its connection.
    """
    return _client(
        settings.DAEMON_ADDRESS, settings.DAEMON_CLIENT_ID, settings.DAEMON_CLIENT_KEY, timeout
    )


@lru_cache(maxsize=8)
def _client(address: str, client_id: str, key: str, timeout: float) -> Client:
    return Client(address, client_id, key, timeout=timeout)
