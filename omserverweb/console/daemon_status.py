"""What the daemons say, for the module and zone pages."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import PurePath

from omserver import client as daemon
from omserver.vocabulary import MODULE_FILE
from omserverweb.endpoints import ZoneHealth, daemon_client, endpoints, probe, refusal_reason
from omserverweb.inventory.models import Server

PAGE_PROBE_TIMEOUT = 2.0  # seconds: a hung daemon must not keep a page waiting long


@dataclass(frozen=True)
class ModuleLoad:
    loaded: bool = False
    error: str = ""
    unknown: bool = False


@dataclass
class LoadStatus:
    loaded: set[int] = field(default_factory=set)
    errors: dict[int, str] = field(default_factory=dict)
    error: str = ""  # set when the daemon could not be asked

    def for_module(self, module_id: int) -> ModuleLoad:
        if self.error:
            return ModuleLoad(unknown=True)
        return ModuleLoad(module_id in self.loaded, self.errors.get(module_id, ""))


def module_load_status() -> LoadStatus:
    try:
        answer = daemon_client(PAGE_PROBE_TIMEOUT).modules()
    except daemon.DaemonError as exc:
        return LoadStatus(error=refusal_reason(exc))
    status = LoadStatus(loaded={int(m["id"]) for m in answer["modules"]})
    for path, message in answer["errors"].items():
        match = MODULE_FILE.fullmatch(PurePath(path).name)
        if match:
            status.errors[int(match.group(1))] = message
    return status


def zone_overview() -> list[tuple[ZoneHealth, int]]:
    """Each zone's daemon as it answers now, with how many servers the zone runs."""
    zones = endpoints()
    registered = {endpoint.zone for endpoint in zones[1:]}
    counts = Counter(
        zone if zone in registered else zones[0].zone
        for zone in Server.objects.values_list("zone", flat=True)
    )
    return [(health, counts[health.endpoint.zone]) for health in probe(zones, PAGE_PROBE_TIMEOUT)]
