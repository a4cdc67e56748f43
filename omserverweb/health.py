"""``GET /healthz``: is this web process able to serve, for load balancers and monitoring.

Anonymous on purpose, so it says only ``ok``/``degraded``/``down`` and one word
per dependency (``daemon`` for the default zone's daemon, the one the console
asks for modules; ``zones`` for each zone's, ``ok``/``degraded``/``unreachable``);
the details (addresses, messages) go to the log. The database decides the HTTP
status (the console is useless without it); a daemon that does not answer, or
answers that it is degraded, makes it ``degraded`` but 200, since pages, history
and the other zones still work. Each check has its own short timeout, and the
zones are asked at once: a probe must answer before the prober gives up,
whatever hangs behind it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, OperationalError, connections
from django.db.utils import load_backend
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from omserverweb.endpoints import default_endpoint, endpoints, probe
from omserverweb.inventory.models import DEFAULT_ZONE

log = logging.getLogger("omserverweb.health")
TIMEOUT = 2  # seconds, per check; whole seconds because MySQL's connect_timeout is


@dataclass(frozen=True)
class Health:
    status: str  # ok | degraded | down
    database: str  # ok | unreachable | error
    daemon: str  # the default zone's daemon: ok | degraded | unreachable
    zones: dict[str, str]  # zone -> ok | degraded | unreachable

    @property
    def http_status(self) -> int:
        return 503 if self.status == "down" else 200


def check() -> Health:
    database = check_database()
    zones = check_daemons(database == "ok")
    daemon = zones[DEFAULT_ZONE]
    if database != "ok":
        return Health("down", database, daemon, zones)
    all_ok = all(state == "ok" for state in zones.values())
    return Health("ok" if all_ok else "degraded", database, daemon, zones)


def check_database() -> str:
    """``SELECT 1`` on a fresh connection with short timeouts.

    Not the request's own connection: its timeouts are the long ones pages
    need, and a probe must neither wait that long nor leave it broken.
    """
    probe = _probe_connection()
    try:
        with probe.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except OperationalError as exc:
        log.warning("health: database unreachable: %s", exc)
        return "unreachable"
    except DatabaseError as exc:
        log.warning("health: database error: %s", exc)
        return "error"
    finally:
        probe.close()
    return "ok"


def _probe_connection() -> Any:
    config = {**connections[DEFAULT_DB_ALIAS].settings_dict}
    options = dict(config.get("OPTIONS") or {})
    if config["ENGINE"].endswith("mysql"):
        options.update(connect_timeout=TIMEOUT, read_timeout=TIMEOUT, write_timeout=TIMEOUT)
    else:  # SQLite: how long to wait for a writer's lock
        options["timeout"] = TIMEOUT
    config.update(OPTIONS=options, CONN_MAX_AGE=0, CONN_HEALTH_CHECKS=False)
    return load_backend(config["ENGINE"]).DatabaseWrapper(config, DEFAULT_DB_ALIAS)


def check_daemons(database_up: bool) -> dict[str, str]:
    """``ping`` each zone's daemon with the web console's own key: reachable *and*
    accepting us, within the probe's short timeout (all zones at once).

    Without the database only the default zone is known.
    """
    zones = endpoints() if database_up else [default_endpoint()]
    states = {}
    for found in probe(zones, TIMEOUT):
        if not found.ok:
            log.warning("health: %s", found.error)
        elif found.problems:
            log.warning("health: zone %s: %s", found.endpoint.zone, "; ".join(found.problems))
        states[found.endpoint.zone] = found.state
    return states


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    health = check()
    return JsonResponse(asdict(health), status=health.http_status)
