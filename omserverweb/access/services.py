"""The one place that decides what a user may see and use: modules, categories, servers.

Whatever lies outside a user's grants does not exist for them: lists leave it out
and a request naming it gets the same answer as one naming something unknown, so
that refusals tell nobody which host names and module ids exist.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from omserverweb.access.models import Grant
from omserverweb.inventory.models import AppCategory, FunctionCategory, Server
from omserverweb.modules.models import ModuleDefinition

log = logging.getLogger("omserverweb.access")

User = AbstractBaseUser | AnonymousUser
MANAGE_MODULES = "modules.change_moduledefinition"
SERVER_ID = re.compile(r"[0-9]{1,18}")  # a server named by its id, not by its hostname


class NotPermittedError(ValueError):
    """Names the user may not use, worded alike whether they exist or not."""

    def __init__(self, names: Iterable[object]) -> None:
        self.names = [str(name) for name in names]
        super().__init__(f"unknown or not permitted: {', '.join(self.names)}")


def _grants(user: User) -> QuerySet[Grant]:
    """The user's grants that cover something runnable: a grant of a disabled module
    shows nothing until the module is enabled."""
    return Grant.objects.filter(group__user=user).filter(
        Q(module__isnull=True) | Q(module__enabled=True)
    )


def runnable_categories(user: User, module: ModuleDefinition) -> set[int] | None:
    """Ids of the application categories ``user`` may run ``module`` on; None means all."""
    if user.is_superuser:
        return None
    granted = Q(module=module) | Q(module__isnull=True)
    grants = Grant.objects.filter(group__user=user).filter(granted)
    categories = list(grants.values_list("app_category_id", flat=True))
    if None in categories:
        return None
    return set(categories)


def runnable_modules(user: User) -> QuerySet[ModuleDefinition]:
    """Enabled modules the user holds at least one grant for (superusers: every enabled one)."""
    modules = ModuleDefinition.objects.filter(enabled=True)
    if user.is_superuser:
        return modules
    granted = _grants(user)
    if granted.filter(module__isnull=True).exists():
        return modules
    return modules.filter(grants__in=granted).distinct()


def listed_modules(user: User) -> QuerySet[ModuleDefinition]:
    """The modules lists show the user: every one to those who manage modules, else
    the ones they may run."""
    if user.has_perm(MANAGE_MODULES):
        return ModuleDefinition.objects.all()
    return runnable_modules(user)


def visible_categories(user: User) -> QuerySet[AppCategory]:
    """Application categories the user's grants cover."""
    categories = AppCategory.objects.select_related("function")
    if user.is_superuser:
        return categories
    granted = _grants(user)
    if granted.filter(app_category__isnull=True).exists():
        return categories
    return categories.filter(grants__in=granted).distinct()


def visible_functions(user: User) -> QuerySet[FunctionCategory]:
    """Function categories holding an application category the user sees (superusers:
    every one, empty ones too)."""
    if user.is_superuser:
        return FunctionCategory.objects.all()
    return FunctionCategory.objects.filter(app_categories__in=visible_categories(user)).distinct()


def visible_servers(user: User) -> QuerySet[Server]:
    """Servers the user's grants cover: the inventory as the user knows it."""
    if user.is_superuser:
        return Server.objects.all()
    return Server.objects.filter(app_category__in=visible_categories(user))


def usable_module(user: User, module_id: int) -> ModuleDefinition:
    """The listed module of that id; NotPermittedError (logged) when there is none.

    A disabled module is returned to those who see it listed, so that they can be
    told it is disabled; to everyone else it does not exist.
    """
    module = listed_modules(user).filter(pk=module_id).first()
    if module is None:
        log.warning(
            "refused: user=%s module=%s (unknown or no grant)", user.get_username(), module_id
        )
        raise NotPermittedError([module_id])
    return module


def usable_servers(user: User, module: ModuleDefinition, refs: Sequence[str]) -> list[Server]:
    """The servers named (by id or hostname) that the user may run ``module`` on, once
    each; NotPermittedError (logged) naming every other one, unknown or forbidden alike."""
    ids = [int(ref) for ref in refs if SERVER_ID.fullmatch(ref)]
    names = [ref for ref in refs if not SERVER_ID.fullmatch(ref)]
    found = list(_runnable_servers(user, module).filter(Q(pk__in=ids) | Q(hostname__in=names)))
    known = {str(s.pk) for s in found} | {s.hostname for s in found}
    refused = list(dict.fromkeys(ref for ref in refs if ref not in known))
    if refused:
        _refuse(user, module, refused)
    return list({s.pk: s for s in found}.values())


def authorize_run(user: User, module: ModuleDefinition, servers: Iterable[Server]) -> None:
    """Raise NotPermittedError (and log it) unless every server is granted."""
    allowed = runnable_categories(user, module)
    if allowed is None:
        return
    denied = sorted(s.hostname for s in servers if s.app_category_id not in allowed)
    if denied:
        _refuse(user, module, denied)


def _runnable_servers(user: User, module: ModuleDefinition) -> QuerySet[Server]:
    allowed = runnable_categories(user, module)
    if allowed is None:
        return Server.objects.all()
    return Server.objects.filter(app_category_id__in=allowed)


def _refuse(user: User, module: ModuleDefinition, hosts: list[str]) -> None:
    log.warning(
        "refused: user=%s module=%s hosts=%s (unknown or no grant)",
        user.get_username(),
        module.pk,
        ",".join(hosts).encode("unicode_escape").decode(),  # names as sent: one log line
    )
    raise NotPermittedError(hosts)
