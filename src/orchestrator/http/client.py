"""Who is calling: the peer address, or the forwarded client behind a trusted proxy."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from aiohttp import web

__all__ = ["ClientResolver", "group_address", "host_port"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def host_port(host: str, port: int | str) -> str:
    """``host:port``, with an IPv6 literal in brackets (``[::1]:8080``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@lru_cache(maxsize=4096)
def group_address(address: str) -> str:
    """The rate-limit group of an address: IPv4 as is, IPv6 by its /64 network.

    IPv4-mapped IPv6 addresses count as their IPv4 address; text that is not an address
    (a Unix socket, a test transport) is returned unchanged.
    """
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address.split("%", 1)[0])
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))


class ClientResolver:
    """Resolves a request's client address.

    The forwarding header is believed only when the peer itself is a trusted proxy; then
    the client is the rightmost hop that is not a trusted proxy. Only ``header`` is read:
    behind a proxy that appends to ``X-Forwarded-For``, a client's own ``Forwarded`` header
    must not choose its rate-limit key (and the other way round).

    Args:
        trusted_proxies: networks (``10.0.0.0/8``, ``::1``) whose forwarding header counts.
        header: ``x-forwarded-for`` or ``forwarded`` (RFC 7239).
    """

    def __init__(
        self, trusted_proxies: tuple[str, ...] = (), header: str = "x-forwarded-for"
    ) -> None:
        self._trusted: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(p, strict=False) for p in trusted_proxies
        )
        self._hops = _forwarded_hops if header == "forwarded" else _x_forwarded_for_hops

    @property
    def direct(self) -> bool:
        """Whether the client is always the peer (no trusted proxies)."""
        return not self._trusted

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        return any(ip in net for net in self._trusted)

    def __call__(self, request: web.Request) -> str:
        """The client's address (not grouped)."""
        peer = request.remote or "unknown"
        if not self._trusted or not self._is_trusted(peer):
            return peer
        hops = self._hops(request)
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                return hop
        return hops[0] if hops else peer


def _forwarded_hops(request: web.Request) -> list[str]:
    """Addresses from ``Forwarded`` (RFC 7239), leftmost first."""
    hops: list[str] = []
    for element in request.forwarded:
        node = element.get("for")
        if node:
            hops.append(_strip_node(node))
    return hops


def _x_forwarded_for_hops(request: web.Request) -> list[str]:
    """Addresses from ``X-Forwarded-For``, leftmost first."""
    hops: list[str] = []
    for value in request.headers.getall("X-Forwarded-For", ()):
        hops.extend(h.strip() for h in value.split(",") if h.strip())
    return hops


def _strip_node(node: str) -> str:
    """``[2001:db8::1]:4711`` → ``2001:db8::1``; ``192.0.2.1:80`` → ``192.0.2.1``."""
    if node.startswith("["):
        return node[1:].split("]", 1)[0]
    if node.count(":") == 1:
        return node.split(":", 1)[0]
    return node
