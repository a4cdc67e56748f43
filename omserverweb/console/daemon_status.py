"""What the daemon says about the Mid_ files, for the module pages."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from omserver import client as daemon
from omserverweb.daemon import daemon_client
from omserverweb.jobs.services import unreachable_reason

MID_FILE = re.compile(r"Mid_(\d+)\.py")


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
        answer = daemon_client().modules()
    except daemon.DaemonError as exc:
        return LoadStatus(error=unreachable_reason(exc))
    status = LoadStatus(loaded={int(m["id"]) for m in answer["modules"]})
    for path, message in answer["errors"].items():
        match = MID_FILE.search(path)
        if match:
            status.errors[int(match.group(1))] = message
    return status
