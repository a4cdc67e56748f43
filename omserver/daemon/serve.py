"""The daemon's life: configuration, key store, engine and rpyc server, until SIGTERM.

The engine writes through the ``Recorder`` it is handed, and the keys' scopes are
checked against the ``ScopeRecord`` it is handed; whoever starts the daemon chooses
them (``omserver serve`` runs the web's ``rundaemon`` command, which hands in the
Django ones).
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

from omserver.config import Config, ConfigError
from omserver.daemon.admission import Limits
from omserver.daemon.handlers import EngineHandler
from omserver.daemon.scopes import ScopedHandler, ScopeRecord
from omserver.daemon.server import PACKET_OVERHEAD, DaemonServer
from omserver.daemon.service import Gate
from omserver.jobs import execution
from omserver.jobs.engine import Engine
from omserver.jobs.recorder import Recorder
from omserver.modules.registry import ModuleRegistry
from omserver.protocol.keys import KeyStore, key_file
from omserver.protocol.wire import parse_address

log = logging.getLogger("omserver.daemon")


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
        "daemon.max_connections_per_address",
        "daemon.max_unauthenticated",
        "daemon.handshake_timeout",
        "daemon.frame_timeout",
        "daemon.idle_timeout",
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


def serve(config: Config, recorder: Recorder, scopes: ScopeRecord) -> None:
    """Listen on ``daemon.address`` until SIGTERM or SIGINT, recording through ``recorder``,
    each key held to its scope (``scopes``: the inventory, and where refusals go)."""
    configure_logging(config["daemon.log_level"])
    host, port = _checked_settings(config)
    keys = KeyStore(key_file(config))
    if not keys.path.exists():
        log.warning(
            "no client key file at %s: every frame will be refused until "
            "`omserver keys add NAME` creates one",
            keys.path,
        )
    registry = ModuleRegistry(config["daemon.modules_dir"], config["daemon.backend"])
    engine = Engine(config, registry, recorder, name=config["daemon.name"])
    gate = Gate(
        keys,
        ScopedHandler(EngineHandler(registry, engine), keys, scopes),
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
            limits=Limits.from_config(config),
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
