"""The REST API's ``Authorization: Token <token>``, checked against users' API tokens."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from omserverweb.apitokens import services
from omserverweb.apitokens.models import ApiToken


class ApiTokenAuthentication(TokenAuthentication):
    """DRF's token scheme (same header, same 401 with ``WWW-Authenticate: Token``) over
    hashed tokens that expire and can be revoked, instead of DRF's one clear key per user."""

    def authenticate_credentials(self, key: str) -> tuple[AbstractBaseUser, ApiToken]:
        token = services.authenticate(key)
        if token is None:
            raise AuthenticationFailed(_("Invalid, expired or revoked token."))
        if not token.user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        return token.user, token
