"""Import servers from a CSV file, Salt's accepted keys or an Ansible inventory.

Every source becomes the same list of ``Candidate`` rows, so one planner checks them
all against the database with the model's own validators, and ``apply_plan`` plans
again inside the transaction that writes: what is written is what the operator saw.
"""

from __future__ import annotations

import csv
import hashlib
import io
import ipaddress
import json
import math
import re
import string
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils.functional import Promise
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from omserverweb.inventory.models import AppCategory, Server

if TYPE_CHECKING:
    from ansible.inventory.data import InventoryData
    from ansible.inventory.host import Host

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000

# Server fields a source gives as text; the hostname is the match key, the category is looked up.
TEXT_FIELDS = ("lan_ip", "wan_ip", "os", "ssh_port", "ssh_user", "zone", "notes")
CSV_COLUMNS = ("hostname", "app_category", *TEXT_FIELDS)
CSV_REQUIRED = ("hostname", "lan_ip")
ANSIBLE_VARIABLES = {
    "ansible_host": "lan_ip",
    "ansible_port": "ssh_port",
    "ansible_user": "ssh_user",
}

# An Ansible host range such as [01:50] or [a:f] or [0:100:10], as its inventory plugins expand it.
HOST_RANGE = re.compile(r"\[([^\[\]:]*):([^\[\]:]*)(?::([^\[\]:]*))?\]")
SPACE = re.compile(r"\s*")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SourceError(Exception):
    """The source as a whole cannot be read; the message tells the operator why."""


class _RowError(Exception):
    """One row cannot be imported; the plan shows the message beside it."""


@dataclass
class Candidate:
    """One server as a source describes it, before any check against the database."""

    hostname: str
    fields: dict[str, str] = field(default_factory=dict)  # only the fields the source gives
    category: str = ""  # "Function/App", as a CSV row names it
    groups: tuple[str, ...] = ()  # Ansible groups, matched against application category names
    where: str = ""  # where the row is in the source, e.g. "line 3"
    error: str = ""  # why the row is unusable, found while parsing


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


# --- sources -------------------------------------------------------------------------------


def parse_csv(text: str) -> list[Candidate]:
    """One candidate per data row; empty cells leave an existing server's value alone."""
    reader = csv.reader(io.StringIO(text))
    try:
        columns = _csv_header(next(reader, []))
        candidates = []
        for cells in reader:
            if any(cell.strip() for cell in cells):
                _check_row_count(len(candidates) + 1)
                where = _("line %(line)d") % {"line": reader.line_num}
                candidates.append(_csv_candidate(columns, cells, where))
    except csv.Error as exc:
        error = _("CSV line %(line)d: %(error)s") % {"line": reader.line_num, "error": exc}
        raise SourceError(error) from None
    return candidates


def _csv_header(cells: list[str]) -> list[str]:
    columns = [cell.strip().lower() for cell in cells]
    unknown = [column for column in columns if column not in CSV_COLUMNS]
    if unknown:
        raise SourceError(
            _("Unknown CSV column(s): %(unknown)s. The columns are: %(known)s.")
            % {"unknown": ", ".join(unknown), "known": ", ".join(CSV_COLUMNS)}
        )
    missing = [column for column in CSV_REQUIRED if column not in columns]
    if missing:
        raise SourceError(
            _("The first CSV line must name the columns, including %(missing)s.")
            % {"missing": ", ".join(missing)}
        )
    repeated = [column for column, count in Counter(columns).items() if count > 1]
    if repeated:
        error = _("CSV column(s) given twice: %(columns)s.") % {"columns": ", ".join(repeated)}
        raise SourceError(error)
    return columns


def _csv_candidate(columns: list[str], cells: list[str], where: str) -> Candidate:
    values = {column: cell.strip() for column, cell in zip(columns, cells, strict=False)}
    candidate = Candidate(
        hostname=values.pop("hostname", ""),
        category=values.pop("app_category", ""),
        fields={name: value for name, value in values.items() if value},
        where=where,
    )
    if len(cells) != len(columns):
        candidate.error = _("Expected %(expected)d fields, found %(found)d.") % {
            "expected": len(columns),
            "found": len(cells),
        }
    return candidate


def parse_salt(
    keys_text: str, ips_text: str = "", lan_network: IpNetwork | None = None
) -> list[Candidate]:
    """One candidate per accepted minion key; an IP the JSON does not tell is an error row."""
    keys = _only_document(keys_text, _("The salt-key output"))
    minions = keys.get("minions") if isinstance(keys, dict) else None
    if not isinstance(minions, list) or not all(isinstance(minion, str) for minion in minions):
        raise SourceError(
            _('This is not the output of "salt-key -L --out=json": it has no "minions" list.')
        )
    _check_row_count(len(minions))
    addresses = _minion_addresses(ips_text)
    return [_salt_candidate(minion, addresses.get(minion, []), lan_network) for minion in minions]


def _minion_addresses(text: str) -> dict[str, list[str]]:
    """Minion id → usable addresses, from the output of network.ip_addrs or grains fqdn_ip4."""
    addresses = {}
    for document in _json_documents(text, _("The minion IP JSON")):
        if not isinstance(document, dict):
            raise SourceError(_("The minion IP JSON must map minion ids to addresses."))
        for minion, value in document.items():
            addresses[minion] = _usable_ips(value)
    return addresses


def _usable_ips(value: object) -> list[str]:
    """The non-loopback, non-link-local addresses in one minion's answer."""
    if isinstance(value, dict):  # grains.item answers {"fqdn_ip4": [...]}
        value = [item for inner in value.values() for item in _as_list(inner)]
    found: list[str] = []
    for item in _as_list(value):
        try:
            ip = ipaddress.ip_address(item) if isinstance(item, str) else None
        except ValueError:
            continue
        if ip and not (ip.is_loopback or ip.is_link_local) and str(ip) not in found:
            found.append(str(ip))
    return found


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]


def _salt_candidate(minion: str, addresses: list[str], network: IpNetwork | None) -> Candidate:
    if network is not None:
        addresses = [address for address in addresses if ipaddress.ip_address(address) in network]
    if len(addresses) == 1:
        return Candidate(minion, {"lan_ip": addresses[0]})
    if not addresses:
        return Candidate(minion, error=str(_("No IP address is known for this minion.")))
    error = _("Several IP addresses (%(ips)s): set the LAN network to choose one.")
    return Candidate(minion, error=error % {"ips": ", ".join(addresses)})


def _only_document(text: str, what: Promise) -> object:
    documents = list(_json_documents(text, what))
    if len(documents) != 1:
        raise SourceError(_("%(what)s must be one JSON document.") % {"what": what})
    return documents[0]


def _json_documents(text: str, what: Promise) -> Iterator[object]:
    """The JSON documents in ``text``: salt prints one per minion unless given --static."""
    decoder = json.JSONDecoder()
    position = SPACE.match(text).end()
    while position < len(text):
        try:
            document, position = decoder.raw_decode(text, position)
        except (ValueError, RecursionError) as exc:
            raise SourceError(
                _("%(what)s is not valid JSON: %(error)s") % {"what": what, "error": exc}
            ) from None
        yield document
        position = SPACE.match(text, position).end()


def parse_ansible(text: str) -> list[Candidate]:
    """One candidate per host, as Ansible's own INI and YAML inventory plugins read them."""
    _refuse_blowups(text)
    hosts = list(_read_inventory(text).hosts.values())
    _check_row_count(len(hosts))
    return [_ansible_candidate(host) for host in hosts]


def _refuse_blowups(text: str) -> None:
    """Refuse what Ansible would take hours or gigabytes to read, before it reads it.

    Host ranges expand into lists (``h[0:99999999]``), and the YAML plugin walks an
    aliased group once per reference, so nested aliases cost exponential time.
    """
    hosts = sum(_hosts_in_line(line) for line in text.splitlines())
    if hosts > MAX_ROWS:
        raise SourceError(
            _("The host ranges in this inventory expand to more than %(max)d hosts.")
            % {"max": MAX_ROWS}
        )
    if _has_yaml_alias(text):
        raise SourceError(_("YAML aliases (*name) are not accepted here: write the groups out."))


def _hosts_in_line(line: str) -> int:
    sizes = [_range_size(*match.groups()) for match in HOST_RANGE.finditer(line)]
    return math.prod(sizes) if sizes else 0


def _range_size(begin: str, end: str, step: str | None) -> int:
    """An upper bound of how many names ``[begin:end:step]`` expands to; 0 if Ansible refuses it."""
    begin = begin or "0"
    if begin in string.ascii_letters and end in string.ascii_letters:
        return len(string.ascii_letters)
    try:
        first, last, stride = int(begin), int(end), int(step or 1)
    except ValueError:
        return 0
    return max(0, (last - first) // stride + 1) if stride > 0 else 0


def _has_yaml_alias(text: str) -> bool:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=loader))
    except yaml.YAMLError:
        return False  # not YAML, so Ansible's YAML plugin will refuse it as well


def _read_inventory(text: str) -> InventoryData:
    """Parse with the static ``yaml`` plugin, then ``ini``, as Ansible tries them.

    Not through ``InventoryManager``: it tries every enabled plugin, and ``auto`` loads
    whichever plugin a YAML file names; ``generator`` and ``constructed`` render Jinja
    with lookups, so an uploaded file could run commands on this web server.
    Ansible is imported here, when an operator needs it, not in every web worker.
    """
    from ansible.errors import AnsibleError
    from ansible.inventory.data import InventoryData
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import inventory_loader

    reasons = []
    with tempfile.TemporaryDirectory(prefix="omserver-import-") as folder:
        for plugin, name in (("yaml", "inventory.yml"), ("ini", "inventory.ini")):
            path = Path(folder, name)
            path.write_text(text, encoding="utf-8")
            inventory = InventoryData()
            try:
                inventory_loader.get(plugin).parse(inventory, DataLoader(), str(path), cache=False)
            except AnsibleError as exc:
                reasons.append(f"{plugin.upper()}: {exc.message}")
                continue
            inventory.reconcile_inventory()
            return inventory
    raise SourceError(
        _("Ansible cannot read this inventory. %(reasons)s") % {"reasons": " ".join(reasons)}
    )


def _ansible_candidate(host: Host) -> Candidate:
    from ansible.inventory.helpers import get_group_vars
    from ansible.utils.vars import combine_vars

    variables = combine_vars(get_group_vars(host.get_groups()), host.get_vars())
    name = str(host.name)
    groups = tuple(str(group.name) for group in host.get_groups())
    fields = {}
    for variable, server_field in ANSIBLE_VARIABLES.items():
        value = variables.get(variable)
        # A vault-encrypted value is no str, and reading it without the vault secret raises.
        if value is not None and not isinstance(value, str | int):
            error = _(
                "%(variable)s must be text or a number (vault-encrypted values cannot be read)."
            )
            return Candidate(name, groups=groups, error=error % {"variable": variable})
        if value is not None:
            fields[server_field] = str(value)
    if "lan_ip" not in fields and _is_ip(name):
        fields["lan_ip"] = name
    candidate = Candidate(name, fields, groups=groups)
    if "lan_ip" not in fields:
        candidate.error = str(_("No IP address: set ansible_host, or name the host by its IP."))
    return candidate


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _check_row_count(count: int) -> None:
    if count > MAX_ROWS:
        raise SourceError(
            _("More than %(max)d servers: import at most %(max)d at a time.") % {"max": MAX_ROWS}
        )


# --- plan and apply ------------------------------------------------------------------------


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
