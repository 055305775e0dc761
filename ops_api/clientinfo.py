"""Who is really asking: the client address and scheme behind trusted reverse proxies, and the
key the login limit counts a client under. Pure functions; `ProxyHeaders` applies them to
each request (ASGI), so `request.client` and `request.url.scheme` are the real ones.

X-Forwarded-For is read right to left, skipping trusted proxies; the first address that is
not one is the client. From a peer that is not a trusted proxy every X-Forwarded-* header is
ignored, so nobody can pick their own address or claim https.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from starlette.types import ASGIApp, Receive, Scope, Send

Address = IPv4Address | IPv6Address


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[IPv4Network | IPv6Network, ...] = ()

    @classmethod
    def parse(cls, items: Iterable[str]) -> TrustedProxies:
        return cls(tuple(ip_network(item, strict=False) for item in items))

    def __contains__(self, host: object) -> bool:
        address = parse_address(str(host))
        return address is not None and any(address.version == net.version and address in net
                                               for net in self.networks)


@dataclass(frozen=True)
class Client:
    host: str
    scheme: str
    forwarded_host: str | None = None


def parse_address(text: str) -> Address | None:
    """An IP address (IPv4-mapped IPv6 as IPv4), or None for anything else."""
    try:
        address = ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def resolve(peer: str, scheme: str, headers: dict[str, str], trusted: TrustedProxies) -> Client:
    """The client for a connection from `peer` carrying these (lower-cased) headers."""
    if peer not in trusted:
        return Client(peer, scheme)
    host = peer
    for hop in reversed([h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]):
        if parse_address(hop) is None:
            break  # garbage: stop at the last address we could believe
        host = hop
        if hop not in trusted:
            break
    proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
    forwarded_host = headers.get("x-forwarded-host", "").split(",")[-1].strip() or None
    return Client(host, proto if proto in ("http", "https") else scheme, forwarded_host)


def limit_key(host: str) -> str:
    """What the login limit counts a client as: its IPv4 address, or its IPv6 /64 (one
    subscriber usually holds a whole /64, so rotating within it gains nothing)."""
    address = parse_address(host)
    if address is None:
        return host[:100]
    if isinstance(address, IPv6Address):
        return str(ip_network(f"{address}/64", strict=False))
    return str(address)


class ProxyHeaders:
    """ASGI middleware: rewrite the scope's client, scheme and host from a trusted proxy's headers."""

    def __init__(self, app: ASGIApp, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.trusted.networks and scope.get("client"):
            peer, port = scope["client"]
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                       if k.startswith(b"x-forwarded-")}
            client = resolve(peer, scope["scheme"], headers, self.trusted)
            scope = {**scope, "client": (client.host, port), "scheme": client.scheme}
            if client.forwarded_host:
                scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"host"] + [
                    (b"host", client.forwarded_host.encode("latin-1"))]
        await self.app(scope, receive, send)
