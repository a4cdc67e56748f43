"""The dry run of an import (what applying would change, row by row), and applying it."""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils.functional import Promise
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from omserverweb.inventory.importing.candidates import TEXT_FIELDS, Candidate
from omserverweb.inventory.models import AppCategory, Server


class _RowError(Exception):
    """One row cannot be imported; the plan shows the message beside it."""


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    ERROR = "error"


@dataclass
class Change:
    field: str
    label: str
    old: str
    new: str


@dataclass
class PlanRow:
    candidate: Candidate
    action: Action
    changes: list[Change] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    server: Server | None = None  # the instance to save, checked with full_clean

    def fail(self, message: str) -> None:
        self.action = Action.ERROR
        self.errors.append(message)


@dataclass
class Plan:
    """What applying would do, row by row; building it writes nothing."""

    rows: list[PlanRow]

    def _rows(self, action: Action) -> list[PlanRow]:
        return [row for row in self.rows if row.action == action]

    @property
    def creates(self) -> list[PlanRow]:
        return self._rows(Action.CREATE)

    @property
    def updates(self) -> list[PlanRow]:
        return self._rows(Action.UPDATE)

    @property
    def unchanged(self) -> list[PlanRow]:
        return self._rows(Action.UNCHANGED)

    @property
    def failed(self) -> list[PlanRow]:
        return self._rows(Action.ERROR)

    @property
    def has_changes(self) -> bool:
        return any(row.action in (Action.CREATE, Action.UPDATE) for row in self.rows)

    @property
    def fingerprint(self) -> str:
        """A digest of what the plan would do, so Apply can tell it from the dry run's."""
        summary = [
            [row.candidate.hostname, row.action]
            + [[change.field, change.old, change.new] for change in row.changes]
            for row in self.rows
        ]
        return hashlib.sha256(json.dumps(summary).encode()).hexdigest()


class StalePlanError(Exception):
    """The inventory changed since the dry run; nothing was written. ``plan`` is the new one."""

    def __init__(self, plan: Plan) -> None:
        super().__init__("the import plan changed since the dry run")
        self.plan = plan


def plan_import(candidates: list[Candidate], default_category: AppCategory | None) -> Plan:
    """Check every candidate against the database and say what applying would do."""
    categories = _Categories()
    existing = _existing_servers(candidates)
    rows = [
        _plan_row(candidate, existing.get(candidate.hostname.lower()), categories, default_category)
        for candidate in candidates
    ]
    _refuse_repeats(
        rows,
        lambda row: row.candidate.hostname.lower(),
        _("Hostname %(value)s is given more than once in this source."),
    )
    _refuse_repeats(
        rows,
        lambda row: row.server.lan_ip if row.server else "",
        _("LAN IP %(value)s is given more than once in this source."),
    )
    _refuse_taken_ips(rows)
    return Plan(rows)


def apply_plan(
    candidates: list[Candidate], default_category: AppCategory | None, fingerprint: str
) -> Plan:
    """Plan again and write it in one transaction, if it is still the plan the operator saw."""
    try:
        with transaction.atomic():
            plan = plan_import(candidates, default_category)
            if plan.fingerprint != fingerprint:
                raise StalePlanError(plan)
            Server.objects.bulk_create([row.server for row in plan.creates])
            for row in plan.updates:
                row.server.save(update_fields=[change.field for change in row.changes])
    except IntegrityError:  # another writer got in between our reads and our writes
        raise StalePlanError(plan_import(candidates, default_category)) from None
    return plan


class _Categories:
    """The application categories, looked up the two ways sources name them."""

    def __init__(self) -> None:
        self.by_path: dict[tuple[str, str], AppCategory] = {}
        self.by_name: dict[str, list[AppCategory]] = defaultdict(list)
        for category in AppCategory.objects.select_related("function"):
            self.by_path[category.function.name, category.name] = category
            self.by_name[category.name].append(category)

    def named_by(self, candidate: Candidate) -> AppCategory | None:
        """The category the candidate names, or None if it names none."""
        if candidate.category:
            return self._by_path(candidate.category)
        matches = {c.pk: c for group in candidate.groups for c in self.by_name.get(group, [])}
        if len(matches) > 1:
            names = ", ".join(sorted(str(category) for category in matches.values()))
            raise _RowError(
                _("The host's groups match several application categories: %(names)s.")
                % {"names": names}
            )
        return next(iter(matches.values()), None)

    def _by_path(self, path: str) -> AppCategory:
        function, _slash, app = path.partition("/")
        category = self.by_path.get((function.strip(), app.strip()))
        if category is None:
            raise _RowError(
                _("Unknown application category %(name)s (write Function/App, e.g. %(example)s).")
                % {"name": path, "example": "Linux.Web/www.example.com"}
            )
        return category


def _existing_servers(candidates: list[Candidate]) -> dict[str, Server]:
    """The servers the candidates name, matched regardless of case as MariaDB's collation does."""
    keys = {candidate.hostname.lower() for candidate in candidates}
    servers = Server.objects.select_related("app_category__function").alias(key=Lower("hostname"))
    return {server.hostname.lower(): server for server in servers.filter(key__in=keys)}


def _plan_row(
    candidate: Candidate,
    server: Server | None,
    categories: _Categories,
    default_category: AppCategory | None,
) -> PlanRow:
    if candidate.error:
        return PlanRow(candidate, Action.ERROR, errors=[candidate.error])
    is_new = server is None
    server = server or Server()
    before = {} if is_new else _values(server)
    errors = []
    try:
        category = categories.named_by(candidate)
    except _RowError as exc:
        category = None
        errors.append(str(exc))
    else:
        if category is None and is_new:
            category = default_category
            if category is None:
                errors.append(str(_("No application category: name one, or choose a default.")))
    server.hostname = candidate.hostname
    for name, value in candidate.fields.items():
        setattr(server, name, value)
    if category is not None:
        server.app_category = category
    errors += _validation_errors(server)
    if errors:
        return PlanRow(candidate, Action.ERROR, errors=errors)
    after = _values(server)
    changes = [
        Change(name, _label(name), _shown(before.get(name)), _shown(value))
        for name, value in after.items()
        if (value not in (None, "") if is_new else value != before[name])
    ]
    action = Action.CREATE if is_new else Action.UPDATE if changes else Action.UNCHANGED
    return PlanRow(candidate, action, changes, server=server)


def _values(server: Server) -> dict[str, object]:
    values = {name: getattr(server, name) for name in ("hostname", *TEXT_FIELDS)}
    values["app_category"] = server.app_category if server.app_category_id else None
    return values


def _shown(value: object) -> str:
    return "" if value is None else str(value)


def _label(name: str) -> str:
    return capfirst(Server._meta.get_field(name).verbose_name)


def _validation_errors(server: Server) -> list[str]:
    """The model's own rules; uniqueness is checked for the whole plan at once instead."""
    try:
        # The category comes from _Categories, just read, so skip its per-row existence query.
        server.full_clean(exclude=["app_category"], validate_unique=False)
    except ValidationError as exc:
        return [
            message if name == NON_FIELD_ERRORS else f"{_label(name)}: {message}"
            for name, messages in exc.message_dict.items()
            for message in messages
        ]
    return []


def _refuse_repeats(rows: list[PlanRow], key: Callable[[PlanRow], str], message: Promise) -> None:
    """A value given twice in one source is refused on every row: which was meant is unclear."""
    counts = Counter(key(row) for row in rows)
    for row in rows:
        value = key(row)
        if value and counts[value] > 1:
            row.fail(message % {"value": value})


def _refuse_taken_ips(rows: list[PlanRow]) -> None:
    """A LAN IP held by another server is refused, even if that server gives it up here."""
    planned = [row for row in rows if row.action in (Action.CREATE, Action.UPDATE)]
    ips = {row.server.lan_ip for row in planned}
    owners = dict(Server.objects.filter(lan_ip__in=ips).values_list("lan_ip", "hostname"))
    for row in planned:
        owner = owners.get(row.server.lan_ip)
        if owner is not None and owner.lower() != row.candidate.hostname.lower():
            row.fail(
                _("LAN IP %(ip)s is already used by server %(owner)s.")
                % {"ip": row.server.lan_ip, "owner": owner}
            )
