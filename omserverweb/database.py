"""Turn ``database.url`` into Django's DATABASES entry, refusing what would not work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url

SQLITE_OPTIONS = {
    "timeout": 20,
    "transaction_mode": "IMMEDIATE",
    # Many short transactions (a job writes each step and line as it comes): with the
    # write-ahead log a commit is an append, and readers never wait for a writer.
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}

# Seconds a connection attempt to MySQL may take: a database host that is away answers
# 503 after this instead of holding the request (and its uWSGI thread) for minutes.
CONNECT_TIMEOUT = 10

# Seconds a connection is kept for the next unit of work (opening one costs more than
# most of the daemon's writes); it is checked before it is reused.
CONN_MAX_AGE = 60

SUPPORTED_ENGINES = {
    "django.db.backends.mysql",
    "django.db.backends.sqlite3",
}


def database_settings(url: str, data_dir: Path) -> dict[str, Any]:
    """Settings for ``url``; an empty url is the embedded SQLite default.

    Raises ``ValueError`` with a reason for a URL Django could not use.
    """
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": data_dir / "omserver.sqlite3",
            "TEST": {"NAME": data_dir / "test-omserver.sqlite3"},
            "OPTIONS": dict(SQLITE_OPTIONS),
            "CONN_MAX_AGE": CONN_MAX_AGE,
            "CONN_HEALTH_CHECKS": True,
        }
    try:
        db = dj_database_url.parse(url, conn_max_age=CONN_MAX_AGE, conn_health_checks=True)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"cannot parse {_redact(url)!r}: {exc}") from exc
    engine = db.get("ENGINE")
    if engine not in SUPPORTED_ENGINES:
        raise ValueError(f"unsupported database {_redact(url)!r}: use mysql:// or sqlite:///")
    if not db.get("NAME"):
        raise ValueError(f"{_redact(url)!r} names no database")
    if engine == "django.db.backends.mysql":
        db["OPTIONS"] = {
            "charset": "utf8mb4",
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
            "isolation_level": "read committed",
            "connect_timeout": CONNECT_TIMEOUT,
        }
        db["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
    else:
        db["TEST"] = {"NAME": f"{db['NAME']}.test"}
        db["OPTIONS"] = dict(SQLITE_OPTIONS)
    return db


def _redact(url: str) -> str:
    """Hide a password in an URL before it reaches a message or a log."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
