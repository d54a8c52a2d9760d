"""The client's address: the socket's peer, or what trusted proxies say they saw.

``X-Forwarded-For`` is believed only when the peer is one of ``SHOP_TRUSTED_PROXIES``; the
header is then read from the right, each trusted proxy vouching for the hop before it, and
the right-most address that is not a trusted proxy is the client. Anything a client wrote
further left is never read, so a client cannot choose the address it is limited by.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(spec: str) -> tuple[Network, ...]:
    """The networks of a comma-separated list of addresses and CIDR blocks; ValueError names a bad entry."""
    found = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        try:
            found.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"SHOP_TRUSTED_PROXIES: {part!r} is no address or CIDR block") from None
    return tuple(found)


class ClientAddress:
    def __init__(self, trusted: Iterable[Network]) -> None:
        self.trusted = tuple(trusted)

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    def of(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address for a request from ``peer`` carrying ``X-Forwarded-For: forwarded_for``."""
        if not self.trusted or not forwarded_for or not self._trusted(peer):
            return peer
        client = peer
        for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
            try:
                client = str(ipaddress.ip_address(hop))
            except ValueError:
                return client  # a trusted proxy wrote no address here: the last one vouched for is the client
            if not self._trusted(client):
                return client
        return client
