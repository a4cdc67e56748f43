"""Ingest tokens: issued once in clear, stored as sha256, checked per batch."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from omserverweb.audit.models import IngestToken
from omserverweb.inventory.models import AppCategory, Server

TOKEN_PREFIX = "omat_"  # noqa: S105 (a marker, not a secret)
# How long a worker trusts what it learnt about a token. Revocation reaches the
# revoking worker at once and every other worker within this many seconds.
CACHE_SECONDS = 2.0


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(
    name: str,
    created_by: str,
    *,
    server: Server | None = None,
    app_category: AppCategory | None = None,
) -> tuple[IngestToken, str]:
    """A new token for one server or one application category; the clear text is returned once."""
    clear = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = IngestToken.objects.create(
        name=name,
        digest=digest(clear),
        prefix=clear[: len(TOKEN_PREFIX) + 4],
        server=server,
        app_category=app_category,
        created_by=created_by,
    )
    return token, clear


def revoke(token: IngestToken) -> None:
    IngestToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    _cache.clear()


@dataclass(frozen=True)
class TokenCoverage:
    """What a valid token covers: the host names it may report commands for."""

    hosts: frozenset[str]
    token_id: int | None = None  # the token's row, to note what it sent that was refused


_cache: dict[str, tuple[float, TokenCoverage | None]] = {}
_cache_lock = threading.Lock()


def authenticate(header: str) -> TokenCoverage | None:
    """The coverage of ``Authorization: Bearer <token>``, or None (missing, wrong, revoked)."""
    scheme, _, clear = header.partition(" ")
    if scheme.lower() != "bearer" or not clear.startswith(TOKEN_PREFIX):
        return None
    key = digest(clear.strip())
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
    if hit and hit[0] > now:
        return hit[1]
    coverage = _lookup(key)
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[key] = (now + CACHE_SECONDS, coverage)
    return coverage


def _lookup(key: str) -> TokenCoverage | None:
    token = IngestToken.objects.filter(digest=key, revoked_at__isnull=True).first()
    if token is None:
        return None
    servers = Server.objects.filter(
        Q(pk=token.server_id) if token.server_id else Q(app_category_id=token.app_category_id)
    )
    return TokenCoverage(frozenset(servers.values_list("hostname", flat=True)), token.pk)
