"""API tokens: issued once in clear, stored as sha256, checked on every API request."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.utils import timezone

from omserverweb.apitokens.models import ApiToken

TOKEN_PREFIX = "omt_"  # noqa: S105 (a marker, not a secret)
PREFIX_SHOWN = len(TOKEN_PREFIX) + 4
# A token used many times a second writes its last use at most this often.
LAST_USED_EVERY = timedelta(minutes=1)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def owned_by(user: AbstractBaseUser) -> QuerySet[ApiToken]:
    """The user's tokens, and no one else's: what the profile page lists and may revoke."""
    return ApiToken.objects.filter(user=user)


def issue(
    user: AbstractBaseUser, name: str, lifetime: timedelta | None = None
) -> tuple[ApiToken, str]:
    """A new token for ``user``, valid for ``lifetime`` (None: until revoked); the clear
    text is returned once and never stored."""
    clear = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        digest=digest(clear),
        prefix=clear[:PREFIX_SHOWN],
        created_at=now,
        expires_at=now + lifetime if lifetime else None,
    )
    return token, clear


def revoke(token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def authenticate(clear: str) -> ApiToken | None:
    """The live token whose clear text is ``clear`` (with its user), or None: unknown,
    expired or revoked. Notes its use, at most once per ``LAST_USED_EVERY``."""
    now = timezone.now()
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=digest(clear), revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .first()
    )
    if token is None:
        return None
    if token.last_used_at is None or token.last_used_at <= now - LAST_USED_EVERY:
        # Conditional, so that concurrent requests write it once.
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_EVERY)
        ).update(last_used_at=now)
        token.last_used_at = now
    return token
