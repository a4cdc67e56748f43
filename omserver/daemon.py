"""``omserver serve``: configuration, key store, handler and rpyc server, until SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omserver import execution
from omserver.config import Config, ConfigError
from omserver.keys import KeyStore, key_file
from omserver.loader import ModuleRegistry
from omserver.server import PACKET_OVERHEAD, DaemonServer
from omserver.service import Gate
from omserver.wire import parse_address

if TYPE_CHECKING:
    from omserver.engine import Engine

log = logging.getLogger("omserver.daemon")
MAX_WAIT = 3600.0  # one wait holds a connection's thread: bound it


class CatalogHandler:
    """``ping`` and ``modules`` from the module registry.

    The module count in ``ping`` is at most ``COUNT_TTL`` seconds old: a
    registry scan costs more than the whole rest of a ping.
    """

    COUNT_TTL = 1.0

    def __init__(self, registry: ModuleRegistry) -> None:
        self.registry = registry
        self._count = (0, float("-inf"))  # (modules, monotonic time counted)

    def ping(self, caller: str) -> dict[str, Any]:
        count, counted = self._count
        if time.monotonic() - counted >= self.COUNT_TTL:
            count = len(self.registry.all())
            self._count = (count, time.monotonic())
        return {"backend": self.registry.backend, "modules": count}

    def modules(self, caller: str) -> dict[str, Any]:
        return {
            "modules": [module.describe() for module in self.registry.all()],
            "errors": self.registry.errors(),
        }


class EngineHandler(CatalogHandler):
    """Every operation: the catalogue from the registry, jobs from the engine."""

    def __init__(self, registry: ModuleRegistry, engine: Engine) -> None:
        super().__init__(registry)
        self.engine = engine

    def ping(self, caller: str) -> dict[str, Any]:
        return {**super().ping(caller), "name": self.engine.name}

    def submit(self, caller: str, **request: Any) -> int:
        return self.engine.submit(caller, request)

    def job(self, caller: str, *, job_id: int, cursor: int) -> dict[str, Any]:
        return self.engine.state(job_id, cursor)

    def wait(self, caller: str, *, job_id: int, timeout: float) -> dict[str, Any]:
        return self.engine.wait(job_id, min(timeout, MAX_WAIT))

    def cancel(self, caller: str, *, job_id: int) -> dict[str, Any]:
        return self.engine.cancel(job_id)

    def run(self, caller: str, *, wait: float, **request: Any) -> dict[str, Any]:
        return self.engine.wait(self.engine.submit(caller, request), min(wait, MAX_WAIT))


def setup_django() -> None:
    """The daemon writes jobs through the web's models, into the web's database."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omserverweb.settings")
    import django

    django.setup()


def build_engine(config: Config) -> tuple[ModuleRegistry, Engine]:
    setup_django()
    from omserver.engine import Engine

    registry = ModuleRegistry(config["daemon.modules_dir"], config["daemon.backend"])
    return registry, Engine(config, registry, name=config["daemon.name"])


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if level != "debug":  # rpyc logs every connection at INFO
        logging.getLogger("omserver.rpyc").setLevel(logging.WARNING)


def _checked_settings(config: Config) -> tuple[str, int]:
    """The listen address; ``ConfigError`` naming the setting when one makes no sense."""
    for name in (
        "daemon.clock_skew",
        "daemon.max_frame_bytes",
        "daemon.workers",
        "daemon.job_timeout",
        "daemon.max_connections",
    ):
        if config[name] <= 0:
            raise ConfigError(f"{config.origin(name)}: must be positive, got {config[name]}")
    if not Path(config["daemon.modules_dir"]).is_dir():
        where = config.origin("daemon.modules_dir")
        raise ConfigError(f"{where}: no such folder {config['daemon.modules_dir']}")
    try:
        return parse_address(config["daemon.address"])
    except ValueError as exc:
        raise ConfigError(f"{config.origin('daemon.address')}: {exc}") from exc


def serve(config: Config) -> None:
    """Listen on ``daemon.address`` until SIGTERM or SIGINT."""
    configure_logging(config["daemon.log_level"])
    host, port = _checked_settings(config)
    keys = KeyStore(key_file(config))
    if not keys.path.exists():
        log.warning(
            "no client key file at %s: every frame will be refused until "
            "`omserver keys add NAME` creates one",
            keys.path,
        )
    registry, engine = build_engine(config)
    gate = Gate(
        keys,
        EngineHandler(registry, engine),
        clock_skew=config["daemon.clock_skew"],
        max_frame_bytes=config["daemon.max_frame_bytes"],
    )
    # Bound before the engine marks what a previous run left as interrupted: a second
    # `serve` by mistake fails here instead of interrupting a live daemon's jobs.
    try:
        server = DaemonServer(
            gate,
            host,
            port,
            max_packet_bytes=config["daemon.max_frame_bytes"] + PACKET_OVERHEAD,
            max_connections=config["daemon.max_connections"],
        )
    except OSError as exc:
        where = config.origin("daemon.address")
        raise ConfigError(f"{where}: cannot listen on {host}:{port}: {exc.strerror}") from exc
    execution.warm_up(config)
    engine.start()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: server.close())
    log.info(
        "omserver daemon listening on %s:%d (backend %s, keys in %s)",
        server.host,
        server.port,
        config["daemon.backend"],
        keys.path,
    )
    server.start()
    grace = config["daemon.shutdown_grace"]
    log.info("stopping: running jobs have %g s to finish", grace)
    engine.shutdown(grace)
    log.info("omserver daemon stopped")
