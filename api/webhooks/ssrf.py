"""Where a webhook may go: never, unless allowed, to an address of this machine or its
networks (loopback, private, link-local, multicast, reserved). Checked when an endpoint is
registered and again before every delivery, since DNS answers change; the delivery then
connects to the address that was checked."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


class UnsafeTarget(Exception):
    """A URL that must not be called: its detail says why."""


@dataclass(frozen=True, slots=True)
class Target:
    host: str  # as written in the URL (the Host header and TLS name)
    address: str  # the checked IP address to connect to


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
    )


async def resolve(url: str, *, allow_private: bool) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget("the URL must be http(s)://host/…")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, port, type=socket.SOCK_STREAM
        )
    except OSError as exc:
        raise UnsafeTarget(f"{parts.hostname!r} does not resolve") from exc
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise UnsafeTarget(f"{parts.hostname!r} does not resolve")
    if not allow_private:
        bad = [str(a) for a in addresses if _forbidden(a)]
        if bad:
            raise UnsafeTarget(
                f"{parts.hostname!r} resolves to a private or local address ({', '.join(bad)})"
            )
    return Target(parts.hostname, str(addresses[0]))
