"""``GET /healthz``: is this web process able to serve, for load balancers and monitoring.

Anonymous on purpose, so it says only ``ok``/``degraded``/``down`` and one word
per dependency; the details (addresses, messages) go to the log. The database
decides the HTTP status (the console is useless without it); a daemon that does
not answer makes it ``degraded`` but 200, since pages and job history still work.
Each check has its own short timeout: a probe must answer before the prober
gives up, whatever hangs behind it.
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

from omserver import client as daemon
from omserverweb.daemon import daemon_client

log = logging.getLogger("omserverweb.health")
TIMEOUT = 2  # seconds, per check; whole seconds because MySQL's connect_timeout is


@dataclass(frozen=True)
class Health:
    status: str  # ok | degraded | down
    database: str  # ok | unreachable | error
    daemon: str  # ok | unreachable

    @property
    def http_status(self) -> int:
        return 503 if self.status == "down" else 200


def check() -> Health:
    database, daemon_state = check_database(), check_daemon()
    if database != "ok":
        return Health("down", database, daemon_state)
    return Health("ok" if daemon_state == "ok" else "degraded", database, daemon_state)


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


def check_daemon() -> str:
    """``ping`` with the web console's own key: reachable *and* accepting us.

    With the probe's short timeout: a hung daemon must not hang the probe.
    """
    try:
        daemon_client(timeout=TIMEOUT).ping()
    except daemon.DaemonError as exc:
        log.warning("health: daemon unreachable: %s", exc)
        return "unreachable"
    return "ok"


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    health = check()
    return JsonResponse(asdict(health), status=health.http_status)
