"""An Ansible inventory in INI or YAML, read by Ansible's own static inventory plugins."""

from __future__ import annotations

import ipaddress
import math
import re
import string
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from django.utils.translation import gettext_lazy as _

from omserverweb.inventory.importing.candidates import (
    MAX_ROWS,
    Candidate,
    SourceError,
    check_row_count,
)
from omserverweb.request_limits import max_json_depth

if TYPE_CHECKING:
    from ansible.inventory.data import InventoryData
    from ansible.inventory.host import Host

# Ansible connection variables → the server fields they fill.
VARIABLES = {
    "ansible_host": "lan_ip",
    "ansible_port": "ssh_port",
    "ansible_user": "ssh_user",
}

# An Ansible host range such as [01:50] or [a:f] or [0:100:10], as its inventory plugins expand it.
HOST_RANGE = re.compile(r"\[([^\[\]:]*):([^\[\]:]*)(?::([^\[\]:]*))?\]")


def parse_ansible(text: str) -> list[Candidate]:
    """One candidate per host, as Ansible's own INI and YAML inventory plugins read them."""
    _refuse_blowups(text)
    hosts = list(_read_inventory(text).hosts.values())
    check_row_count(len(hosts))
    return [_candidate(host) for host in hosts]


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
    _refuse_yaml_shapes(text)


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


def _refuse_yaml_shapes(text: str) -> None:
    """Refuse YAML aliases, and nesting deeper than ``web.max_json_depth`` (which Ansible's
    recursive reader would meet as a RecursionError), from the parser's flat event stream."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    limit, depth = max_json_depth(), 0
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.AliasEvent):
                raise SourceError(
                    _("YAML aliases (*name) are not accepted here: write the groups out.")
                )
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > limit:
                    raise SourceError(
                        _("YAML nested deeper than %(limit)d levels.") % {"limit": limit}
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return  # not YAML, so Ansible's YAML plugin will refuse it as well


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


def _candidate(host: Host) -> Candidate:
    from ansible.inventory.helpers import get_group_vars
    from ansible.utils.vars import combine_vars

    variables = combine_vars(get_group_vars(host.get_groups()), host.get_vars())
    name = str(host.name)
    groups = tuple(str(group.name) for group in host.get_groups())
    fields = {}
    for variable, server_field in VARIABLES.items():
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
