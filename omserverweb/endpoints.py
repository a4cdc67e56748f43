"""The web console's connections to the master-control daemons, one per zone.

The default zone's daemon comes from the web's settings; every other zone is a
registered ``Zone``. A server whose zone is not registered is the default's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

from django.conf import settings

from omserver import client as daemon
from omserver.client import Client
from omserverweb.inventory.models import DEFAULT_ZONE, Zone

_T = TypeVar("_T")
_R = TypeVar("_R")

PAGE_TIMEOUT = 30.0  # seconds a page waits for the daemon's answer
# Seconds a zone's daemon gets to take a connection and answer a job's part or a
# cancel: a hung one fails its own hosts after this, the other zones never wait for it.
ZONE_TIMEOUT = 5.0
# Seconds a refused connection (a daemon restarting) is tried again when sending a part;
# within the wait of the request that sends it, so a daemon that is down says so at once.
SEND_RETRY_FOR = 0.3


@dataclass(frozen=True)
class Endpoint:
    """Where a zone's daemon listens and how the web console signs in to it."""

    zone: str
    address: str
    client_id: str
    key: str
    backend: str = ""  # as registered; "" for the default zone (its daemon says)

    @property
    def is_default(self) -> bool:
        return self.zone == DEFAULT_ZONE

    def client(self, timeout: float = PAGE_TIMEOUT, retry_for: float = 0.0) -> Client:
        """One per process, endpoint and timeouts: safe to share between threads."""
        return _client(self.address, self.client_id, self.key, timeout, retry_for)


def default_endpoint() -> Endpoint:
    return Endpoint(
        DEFAULT_ZONE, settings.DAEMON_ADDRESS, settings.DAEMON_CLIENT_ID, settings.DAEMON_CLIENT_KEY
    )


def _registered(zone: Zone) -> Endpoint:
    return Endpoint(zone.name, zone.address, zone.client_id, zone.client_key, zone.backend)


def endpoints() -> list[Endpoint]:
    """Every zone: the default first, then the registered ones by name."""
    return [default_endpoint(), *map(_registered, Zone.objects.all())]


def endpoints_for(zone_names: Iterable[str]) -> dict[str, Endpoint]:
    """The endpoint that runs each of these zone names (unregistered: the default)."""
    names = set(zone_names)
    registered = {z.name: _registered(z) for z in Zone.objects.filter(name__in=names)}
    return {name: registered.get(name) or default_endpoint() for name in names}


def daemon_client(timeout: float = PAGE_TIMEOUT) -> Client:
    """The default zone's daemon: the one that answers for modules and health."""
    return default_endpoint().client(timeout)


@lru_cache(maxsize=32)
def _client(address: str, client_id: str, key: str, timeout: float, retry_for: float) -> Client:
    return Client(address, client_id, key, timeout=timeout, retry_for=retry_for)


def refusal_reason(exc: daemon.DaemonError, endpoint: Endpoint | None = None) -> str:
    """What an operator reads when a zone's daemon could not take a request."""
    endpoint = endpoint or default_endpoint()
    zone = "" if endpoint.is_default else f"zone {endpoint.zone}: "
    if isinstance(exc, daemon.ClientConfigError):
        where = (
            "OMSERVER_DAEMON_CLIENT_KEY"
            if endpoint.is_default
            else "enter the zone's client key again"
        )
        return f"{zone}the web console has no usable daemon key ({where}): {exc}"
    if isinstance(exc, daemon.FrameRefused):
        refused = "refused the web console's key"
        return f"{zone}master-control daemon at {endpoint.address} {refused}: {exc}"
    if isinstance(exc, daemon.DaemonUnreachable):
        return f"{zone}master-control daemon unreachable at {endpoint.address}: {exc}"
    if isinstance(exc, daemon.Unavailable):
        return (
            f"{zone}master-control daemon at {endpoint.address} is unavailable "
            f"(try again shortly): {exc}"
        )
    return f"{zone}the daemon at {endpoint.address} answered: {exc}"


@dataclass(frozen=True)
class ZoneHealth:
    """One zone's daemon as a ``ping`` found it: its answer, or why there was none.

    A daemon that answers may still say it is degraded (its database away, workers
    dead): its ``health`` key; a daemon too old to have one is taken as healthy.
    """

    endpoint: Endpoint
    answer: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def ok(self) -> bool:
        """The daemon answered (it may still be degraded)."""
        return not self.error

    @property
    def state(self) -> str:
        """``ok``, ``degraded`` (it answers and says so) or ``unreachable``."""
        if self.error:
            return "unreachable"
        health = self.answer.get("health")
        degraded = isinstance(health, dict) and health.get("status", "ok") != "ok"
        return "degraded" if degraded else "ok"

    @property
    def problems(self) -> list[str]:
        """What the daemon says is wrong with it, in its words."""
        health = self.answer.get("health")
        found = health.get("problems") if isinstance(health, dict) else None
        if isinstance(found, list) and found:
            return [str(problem) for problem in found]
        return ["the daemon says it is degraded"] if self.state == "degraded" else []

    @property
    def warnings(self) -> list[str]:
        """A daemon that answers but is not the one registered."""
        found = []
        backend = self.answer.get("backend")
        if self.ok and self.endpoint.backend and backend != self.endpoint.backend:
            found.append(f"registered as {self.endpoint.backend}, runs {backend}")
        return found


def probe(endpoints_: list[Endpoint], timeout: float) -> list[ZoneHealth]:
    """``ping`` every zone at once: a dead zone costs ``timeout``, not one per zone."""

    def ping(endpoint: Endpoint) -> ZoneHealth:
        try:
            client = endpoint.client(timeout)
        except daemon.DaemonError as exc:  # a key that is not one
            return ZoneHealth(endpoint, error=refusal_reason(exc, endpoint))
        try:
            return ZoneHealth(endpoint, client.ping())
        except daemon.DaemonError as exc:
            return ZoneHealth(endpoint, error=refusal_reason(exc, endpoint))
        finally:
            client.close_thread()  # the pool's threads end with this call

    return each_at_once(ping, endpoints_)


def each_at_once(work: Callable[[_T], _R], items: list[_T]) -> list[_R]:
    """``work`` on every item, each in its own thread: the slowest sets the time taken."""
    if not items:
        return []
    with ThreadPoolExecutor(len(items), thread_name_prefix="zones") as pool:
        return list(pool.map(work, items))
