"""Go's ``net``: IP address text as ``net.ParseIP`` reads it and ``IP.String`` writes it.

ConTest's target managers check a target's IPv4/IPv6 fields with ``net.ParseIP``; Python's
``ipaddress`` accepts a little more (scoped addresses), so the difference is closed here.
"""

from __future__ import annotations

import ipaddress

__all__ = ["parse_ip"]


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Go's ``net.ParseIP``: dotted IPv4 or IPv6 text, no zone, no port; ``None`` if invalid.

    An IPv4-mapped IPv6 address is returned as the IPv4 address, since that is what Go prints
    for it (``::ffff:1.2.3.4`` shows as ``1.2.3.4``).
    """
    if "%" in text:  # Python accepts scoped IPv6 addresses (fe80::1%eth0); Go does not
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
