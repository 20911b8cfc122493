"""The client's IP address: the TCP peer, or what a trusted proxy in front of us says it was.

``X-Forwarded-For`` can be sent by anyone, so it is read only when the peer is one of the configured
``TRUSTED_PROXIES``; then the client is the right-most address in the header that is not itself a
trusted proxy (each proxy appends the address it saw, so addresses further left are the client's
own claims). Everything that records or counts an IP (audit rows, fraud velocity) uses this.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Final

from aiohttp import web

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

TRUSTED_PROXIES_KEY: Final[web.AppKey[tuple[Network, ...]]] = web.AppKey("trusted_proxies")
FORWARDED_FOR: Final = "X-Forwarded-For"


def parse_ip(text: str | None) -> IpAddress | None:
    """An IP address, IPv4-mapped IPv6 unwrapped; None for anything that is not one."""
    try:
        address = ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d
    return address


def client_ip(request: web.Request) -> str | None:
    """The address of the client behind ``request`` (see the module docstring)."""
    trusted = request.config_dict.get(TRUSTED_PROXIES_KEY, ())
    peer = parse_ip(request.remote)
    if peer is None:
        return request.remote
    if not _is_trusted(peer, trusted):
        return str(peer)
    hops = [parse_ip(part) for part in request.headers.get(FORWARDED_FOR, "").split(",")]
    for hop in reversed(hops):
        if hop is None:
            return str(peer)  # a garbled hop: trust nothing beyond the proxy we know
        if not _is_trusted(hop, trusted):
            return str(hop)
    return str(peer)


def _is_trusted(address: IpAddress, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)
