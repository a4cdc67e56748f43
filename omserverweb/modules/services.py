"""Modules go live by decision: what the daemons found, and what an operator enabled.

A daemon reports each ``Mid_`` file it finds (its SHA-256, parameter schema, or
load error); a new one is recorded *new* and disabled. An operator with
``modules.enable_moduledefinition`` enables the file as reported, which pins
its parameter schema: the schema is what users may send it, so a file whose
schema changes afterwards is disabled and flagged until someone enables it
again. An edit that keeps the schema runs on (the page shows that the hash
moved): whoever may write the modules folder is trusted with code already, and
a review of every fix would turn the decision into a reflex. Daemons ask
:func:`module_enabled` before they queue or run a job.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from omserverweb.modules.models import ModuleDefinition

log = logging.getLogger("omserverweb.modules")

ENABLE_PERMISSION = "modules.enable_moduledefinition"


class ModuleReviewError(ValueError):
    """The module cannot be enabled as asked; the message says why."""


def _plain(schema: Any) -> Any:
    """The schema as the database gives it back (tuples become lists), to compare."""
    return json.loads(json.dumps(schema))


def report_modules(reports: list[dict[str, Any]]) -> None:
    """Record what a daemon found (``ModuleRegistry.reports``): new files new and disabled,
    each file's hash, schema and load error, and enabled modules whose schema changed
    disabled."""
    ids = [report["id"] for report in reports]
    known = set(ModuleDefinition.objects.filter(pk__in=ids).values_list("pk", flat=True))
    # Outside the transaction, ignoring a row another daemon added meanwhile.
    ModuleDefinition.objects.bulk_create(
        [
            ModuleDefinition(pk=r["id"], name=r.get("name") or f"Mid_{r['id']}.py")
            for r in reports
            if r["id"] not in known
        ],
        ignore_conflicts=True,
    )
    now = timezone.now()
    with transaction.atomic():
        rows = ModuleDefinition.objects.select_for_update().in_bulk(ids)
        for report in reports:
            _take_report(rows[report["id"]], report, now)


def _take_report(row: ModuleDefinition, report: dict[str, Any], now: Any) -> None:
    row.file_hash, row.load_error, row.reported_at = report["sha256"], report["error"], now
    if not report["error"]:
        schema = _plain(report["params"])
        row.file_schema = schema
        if row.enabled_at is None and not (row.enabled or row.schema_changed):  # never enabled
            row.name, row.caption = report["name"][:100], report["caption"]
            row.backends, row.params_schema = report["backends"], schema
        elif row.enabled and schema != _plain(row.params_schema):
            row.enabled, row.schema_changed = False, True
            log.warning("module %d disabled: its parameter schema changed", row.pk)
        elif schema == _plain(row.params_schema):
            row.schema_changed = False  # changed back: still disabled, but no longer flagged
    row.save()


def module_enabled(module_id: int, schema: list) -> bool:
    """Whether an operator enabled the module with this parameter schema."""
    row = ModuleDefinition.objects.filter(pk=module_id, enabled=True).first()
    return row is not None and _plain(row.params_schema) == _plain(schema)


def _require(user: AbstractBaseUser | AnonymousUser) -> None:
    if not user.has_perm(ENABLE_PERMISSION):
        log.warning("refused: user=%s needs %s", user.get_username(), ENABLE_PERMISSION)
        raise PermissionDenied(f"enabling or disabling a module needs {ENABLE_PERMISSION}")


def enable_module(
    user: AbstractBaseUser | AnonymousUser, module_id: int, file_hash: str
) -> ModuleDefinition:
    """Enable the file a daemon reported, if its SHA-256 is still ``file_hash`` (the one
    the operator reviewed); its schema becomes the one users may send."""
    _require(user)
    with transaction.atomic():
        module = ModuleDefinition.objects.select_for_update().get(pk=module_id)
        if module.file_schema is None or not module.file_hash:
            raise ModuleReviewError(
                _("No daemon has reported a loadable Mid_%(id)s.py yet: nothing to review.")
                % {"id": module_id}
            )
        if module.load_error:
            raise ModuleReviewError(
                _("Mid_%(id)s.py does not load: %(error)s")
                % {"id": module_id, "error": module.load_error}
            )
        if file_hash != module.file_hash:
            raise ModuleReviewError(
                _(
                    "Mid_%(id)s.py changed since it was shown (SHA-256 now %(hash)s…): "
                    "review it again."
                )
                % {"id": module_id, "hash": module.file_hash[:12]}
            )
        module.enabled, module.schema_changed = True, False
        module.params_schema = module.file_schema
        module.enabled_hash, module.enabled_at = module.file_hash, timezone.now()
        module.enabled_by = user.get_username()
        module.save()
    log.info("module %d enabled by %s (SHA-256 %s)", module_id, user.get_username(), file_hash)
    return module


def disable_module(user: AbstractBaseUser | AnonymousUser, module_id: int) -> ModuleDefinition:
    """Stop the module from running: the daemons refuse it from now on."""
    _require(user)
    module = ModuleDefinition.objects.get(pk=module_id)
    module.enabled = False
    module.save(update_fields=["enabled", "updated_at"])
    log.info("module %d disabled by %s", module_id, user.get_username())
    return module
