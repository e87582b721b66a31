"""The address a call came from, behind a load balancer: the refusal logs name the client, not nginx.

A proxy such as nginx (`grpc_set_header X-Forwarded-For $proxy_add_x_forwarded_for;`) passes the
addresses a call came through in the `x-forwarded-for` metadata, its own peer last. Anyone can send
that metadata, so it is believed only from the proxies named by `--trusted-proxy`: walking the list
from the right, each address that is a trusted proxy is skipped, and the first that is not is the
client. From a peer that is not a trusted proxy the metadata is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["TrustedProxies", "forwarded_client", "peer_ip"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """Addresses or networks (`127.0.0.1`, `10.0.0.0/8`, `::1`) whose `x-forwarded-for` is believed."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        """Raises ValueError naming an entry that is not an IP address or network."""
        networks: list[Network] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(f"--trusted-proxy {entry!r} is not an IP address or network "
                                 "(e.g. 127.0.0.1 or 10.0.0.0/8)") from None
        self._networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def __contains__(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)


def peer_ip(peer: str) -> str:
    """The IP address of a gRPC peer string (`ipv4:10.0.0.5:41234`, `ipv6:[::1]:41234`); `peer` otherwise."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]") if rest.startswith("[") else rest
    return peer


def forwarded_client(peer: str, metadata: Sequence[tuple[str, str | bytes]], trusted: TrustedProxies) -> str | None:
    """The client's address that a trusted proxy forwarded (`x-forwarded-for`), or None: the peer is not a
    trusted proxy, or forwarded nothing but trusted proxies."""
    if not trusted or peer_ip(peer) not in trusted:
        return None
    hops: list[str] = []
    for key, value in metadata:
        if key == "x-forwarded-for":
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            hops.extend(hop.strip() for hop in text.split(",") if hop.strip())
    for hop in reversed(hops):
        if hop not in trusted:
            return hop[:64]  # bounded: the first hop is the client's to fill
    return None
