"""What every source parser returns: candidate rows, and the limits they all keep."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _

MAX_ROWS = 5000

# Server fields a source gives as text; the hostname is the match key, the category is looked up.
TEXT_FIELDS = ("lan_ip", "wan_ip", "os", "ssh_port", "ssh_user", "zone", "notes")


class SourceError(Exception):
    """The source as a whole cannot be read; the message tells the operator why."""


@dataclass
class Candidate:
    """One server as a source describes it, before any check against the database."""

    hostname: str
    fields: dict[str, str] = field(default_factory=dict)  # only the fields the source gives
    category: str = ""  # "Function/App", as a CSV row names it
    groups: tuple[str, ...] = ()  # Ansible groups, matched against application category names
    where: str = ""  # where the row is in the source, e.g. "line 3"
    error: str = ""  # why the row is unusable, found while parsing


def check_row_count(count: int) -> None:
    if count > MAX_ROWS:
        raise SourceError(
            _("More than %(max)d servers: import at most %(max)d at a time.") % {"max": MAX_ROWS}
        )
