"""The one place that decides whether a user may run a module on servers."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Q

from omserverweb.access.models import Grant
from omserverweb.inventory.models import AppCategory, Server
from omserverweb.modules.models import ModuleDefinition

log = logging.getLogger("omserverweb.access")

User = AbstractBaseUser | AnonymousUser


def _grants(user: User, module: ModuleDefinition):
    return Grant.objects.filter(group__user=user).filter(Q(module=module) | Q(module__isnull=True))


def runnable_categories(user: User, module: ModuleDefinition) -> set[int] | None:
    """Ids of the application categories ``user`` may run ``module`` on; None means all."""
    if user.is_superuser:
        return None
    grants = list(_grants(user, module).values_list("app_category_id", flat=True))
    if None in grants:
        return None
    return set(grants)


def visible_modules(user: User) -> Iterable[ModuleDefinition]:
    """Enabled modules the user holds at least one grant for."""
    modules = ModuleDefinition.objects.filter(enabled=True)
    if user.is_superuser:
        return modules
    granted = Grant.objects.filter(group__user=user)
    if granted.filter(module__isnull=True).exists():
        return modules
    return modules.filter(grants__in=granted).distinct()


def visible_categories(user: User) -> Iterable[AppCategory]:
    categories = AppCategory.objects.select_related("function")
    if user.is_superuser:
        return categories
    granted = Grant.objects.filter(group__user=user)
    if granted.filter(app_category__isnull=True).exists():
        return categories
    return categories.filter(grants__in=granted).distinct()


def authorize_run(user: User, module: ModuleDefinition, servers: Iterable[Server]) -> None:
    """Raise PermissionDenied (and log it) unless every server is granted."""
    allowed = runnable_categories(user, module)
    if allowed is None:
        return
    denied = sorted(s.hostname for s in servers if s.app_category_id not in allowed)
    if denied:
        log.warning(
            "refused: user=%s module=%s hosts=%s (no grant)",
            user.get_username(),
            module.pk,
            ",".join(denied),
        )
        raise PermissionDenied(f"no grant to run module {module.pk} on {', '.join(denied)}")
