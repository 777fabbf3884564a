"""Where an IP address leads: the public internet, this host or its private network, or a
cloud's metadata service, so a feed's redirect cannot reach what the bot itself can.

A public feed that redirects to ``127.0.0.1:6379`` or ``169.254.169.254`` would have
the bot fetch an internal service and post what it answers. :mod:`bot.fetch.client` judges
every address it connects to with :func:`reach`; :func:`literal_address` reads the
addresses a URL spells out, so they are judged before any connection is made.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Literal

Reach = Literal["public", "private", "metadata"]
"""``private`` covers loopback, RFC 1918, ULA, link-local, CGNAT, unspecified, multicast
and every other range that is not globally routed."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean ...
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS over IPv6
        "fd20:ce::254",  # GCP over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure's wire server (public space, platform-only)
    )
)
"""Cloud metadata services: they hand out credentials, so no feed ever reaches them."""

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_FORMS = re.compile(r"[0-9a-fx.]+", re.IGNORECASE)


def reach(address: str) -> Reach:
    """Where ``address`` (an IP address, IPv6 zone allowed) leads; IPv4 embedded in IPv6
    (mapped, NAT64, 6to4) is judged as the IPv4 address it carries."""
    ip = _embedded(ipaddress.ip_address(address.split("%", 1)[0]))
    if ip in METADATA:
        return "metadata"
    return "public" if ip.is_global and not ip.is_multicast else "private"


def literal_address(host: str) -> str | None:
    """The IP address a URL's host spells (``127.0.0.1``, ``[::1]``, ``2130706433``,
    ``0x7f.1``: resolvers accept them all), or None for a name."""
    host = host.strip("[]")
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        pass
    if not _IPV4_FORMS.fullmatch(host):
        return None
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def _embedded(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour or ip
