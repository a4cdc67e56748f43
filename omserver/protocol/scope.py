"""What a client key may do: the modules it may run, the hosts it may target, whether it
may speak for other users and whether it may see other clients' jobs.

A key is not full trust: a stolen tool key reaches only what its scope names. Hosts are
chosen from the inventory (by name pattern, application category or zone); a target the
inventory does not hold, or one that names an inventory host but points elsewhere, is
"unlisted" and refused unless the scope says ``unlisted`` outright (lab tools only).

Host selectors (comma-separated on the command line)::

    *               every enabled inventory server
    name:PATTERN    servers whose hostname matches PATTERN (a bare PATTERN means the same)
    app:PATTERN     servers of an application category: ``Function/App`` when PATTERN has
                    a ``/``, else the application's name alone
    zone:PATTERN    servers of a zone
    unlisted        targets outside the inventory, as the client describes them

PATTERN is a shell-style pattern (``www-*``, ``dc[12]``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

ANY = "*"
UNLISTED = "unlisted"
_KINDS = ("name", "app", "zone")
_FIELDS = {"modules", "hosts", "on_behalf", "all_jobs"}
_PATTERN = re.compile(r"[^\s,]{1,200}")


class ScopeError(ValueError):
    """A scope that cannot be understood; the message names the bad part."""


@dataclass(frozen=True)
class InventoryHost:
    """What the scope check needs of an enabled inventory server."""

    target: dict[str, Any]  # as the daemon receives it: hostname, lan_ip, ssh_port, ssh_user
    app: str  # "Function/App"
    zone: str


@dataclass(frozen=True)
class Scope:
    """A key's scope. The defaults are the narrow ones: nothing but ping and its own jobs.

    ``assigned`` is False for a key made before scopes existed: it gets the narrow
    scope, and its refusals say how to give it one.
    """

    modules: frozenset[int] | None = frozenset()  # None: every module
    hosts: tuple[str, ...] = ()
    on_behalf: bool = False
    all_jobs: bool = False
    assigned: bool = field(default=True, compare=False)

    # -- checks ----------------------------------------------------------------------

    def allows_module(self, module_id: int) -> bool:
        return self.modules is None or module_id in self.modules

    def allows_host(self, hostname: str, inventory: InventoryHost | None) -> bool:
        """``inventory``: the enabled server of that name whose target this is, or None."""
        if inventory is None:
            return UNLISTED in self.hosts
        return any(_selects(selector, hostname, inventory) for selector in self.hosts)

    # -- text and JSON ---------------------------------------------------------------

    def describe(self) -> str:
        """One line for ``keys list``."""
        if not self.assigned:
            return "no scope (made before scopes: nothing but ping; see `keys scope`)"
        modules = ANY if self.modules is None else ",".join(map(str, sorted(self.modules)))
        flags = (("on-behalf", self.on_behalf), ("all-jobs", self.all_jobs))
        shown = "".join(f" {flag}" for flag, on in flags if on)
        return f"modules={modules or '-'} hosts={','.join(self.hosts) or '-'}{shown}"

    def to_json(self) -> dict[str, Any]:
        return {
            "modules": [ANY] if self.modules is None else sorted(self.modules),
            "hosts": list(self.hosts),
            "on_behalf": self.on_behalf,
            "all_jobs": self.all_jobs,
        }

    @classmethod
    def from_json(cls, data: Any) -> Scope:
        """A key file entry's ``scope``; None (an entry made before scopes) is the narrow one."""
        if data is None:
            return cls(assigned=False)
        if not isinstance(data, dict) or set(data) != _FIELDS:
            raise ScopeError(f"a scope is an object of {', '.join(sorted(_FIELDS))}: {data!r}")
        if not isinstance(data["modules"], list) or not isinstance(data["hosts"], list):
            raise ScopeError("a scope's modules and hosts are lists")
        if not isinstance(data["on_behalf"], bool) or not isinstance(data["all_jobs"], bool):
            raise ScopeError("a scope's on_behalf and all_jobs are true or false")
        return cls(
            modules=parse_modules(data["modules"]),
            hosts=parse_hosts(data["hosts"]),
            on_behalf=data["on_behalf"],
            all_jobs=data["all_jobs"],
        )


# What the web console's key needs: it checks each user's grants itself, sends only
# inventory servers, speaks for its users and cancels any job a user may cancel.
WEB = Scope(modules=None, hosts=(ANY,), on_behalf=True, all_jobs=True)


def parse_modules(items: list[Any] | str) -> frozenset[int] | None:
    """``*`` (every module) or module ids; a string is split on commas."""
    if isinstance(items, str):
        items = [item.strip() for item in items.split(",") if item.strip()]
    if ANY in items:
        if len(items) > 1:
            raise ScopeError("modules: '*' already means every module; give it alone")
        return None
    ids = set()
    for item in items:
        text = str(item)
        if isinstance(item, bool) or not text.isdigit() or int(text) <= 0:
            raise ScopeError(f"modules: {item!r} is not a module id (a positive integer) or '*'")
        ids.add(int(text))
    return frozenset(ids)


def parse_hosts(items: list[Any] | str) -> tuple[str, ...]:
    """Host selectors (see the module's docstring); a string is split on commas."""
    if isinstance(items, str):
        items = [item.strip() for item in items.split(",") if item.strip()]
    selectors = []
    for item in items:
        if not isinstance(item, str):
            raise ScopeError(f"hosts: {item!r} is not a host selector")
        kind, sep, pattern = item.partition(":")
        if item in (ANY, UNLISTED):
            pass
        elif sep and kind not in _KINDS:
            raise ScopeError(f"hosts: {item!r}: a selector is *, unlisted, name:, app: or zone:")
        elif not _PATTERN.fullmatch(pattern if sep else item):
            raise ScopeError(f"hosts: {item!r}: a pattern is 1-200 characters, no space or comma")
        if item not in selectors:
            selectors.append(item)
    return tuple(selectors)


def _selects(selector: str, hostname: str, host: InventoryHost) -> bool:
    if selector == ANY:
        return True
    if selector == UNLISTED:
        return False
    kind, sep, pattern = selector.partition(":")
    if not sep:
        kind, pattern = "name", selector
    if kind == "name":
        return fnmatchcase(hostname, pattern)
    if kind == "zone":
        return fnmatchcase(host.zone, pattern)
    app = host.app if "/" in pattern else host.app.rpartition("/")[2]
    return fnmatchcase(app, pattern)
