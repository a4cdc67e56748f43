"""The accepted keys of ``salt-key -L --out=json``, with the minions' IPs from another salt call."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from omserverweb import request_limits
from omserverweb.inventory.importing.candidates import Candidate, SourceError, check_row_count

SPACE = re.compile(r"\s*")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    check_row_count(len(minions))
    addresses = _minion_addresses(ips_text)
    return [_candidate(minion, addresses.get(minion, []), lan_network) for minion in minions]


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


def _candidate(minion: str, addresses: list[str], network: IpNetwork | None) -> Candidate:
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
    position = SPACE.match(text).end()
    while position < len(text):
        try:
            document, position = request_limits.raw_decode(text, position)
        except ValueError as exc:  # malformed, or nested deeper than the limit
            raise SourceError(
                _("%(what)s is not valid JSON: %(error)s") % {"what": what, "error": exc}
            ) from None
        yield document
        position = SPACE.match(text, position).end()
