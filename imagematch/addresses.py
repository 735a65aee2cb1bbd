"""Which network destinations a download may reach (the SSRF guard of :mod:`imagematch.fetch`).

A host is resolved once; every address it resolves to must be public (or admitted by the
``IMAGEMATCH_FETCH_ALLOW_PRIVATE`` allowance), and the caller then connects to exactly the
address that was checked, so a second DNS answer (rebinding) cannot point elsewhere. IPv6 forms
that carry an IPv4 address (mapped ``::ffff:a.b.c.d``, translated ``::ffff:0:a.b.c.d``,
compatible ``::a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo) are judged by the
IPv4 address they carry. Special-purpose prefixes are refused from our own table, not only by the
running Python's ``is_global``.
Public destinations are reachable on ports 80 and 443 only, plus the listed extra ports.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from imagematch.errors import PermanentError, TransientError

__all__ = ["AddressPolicy", "IPAddress", "Resolver", "resolve_host"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]  # (host, port) → address strings, in preference order

_ALL = frozenset({"true", "1", "yes", "all", "*"})
_NONE = frozenset({"", "false", "0", "no", "none"})
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIXTOFOUR = ipaddress.IPv6Network("2002::/16")
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT: ::ffff:0:a.b.c.d
# Never public, whatever the running Python's ``is_global`` tables say (they differ by version:
# 3.11 calls site-local fec0::/10 and local-use NAT64 64:ff9b:1::/48 global). IANA special-purpose
# registries; the forms that wrap an IPv4 address are judged by it instead (``_embedded_ipv4``).
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "64:ff9b:1::/48", "100::/64", "2001:db8::/32", "3fff::/20",
        "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    )
)  # fmt: skip
DEFAULT_PORTS = frozenset({80, 443})


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (the system resolver); TransientError if it cannot."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TransientError(f"cannot resolve {host}: {exc}") from exc
    return [str(info[4][0]) for info in infos]


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address wraps, if it is one of the translation forms."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _IPV4_TRANSLATED:
        return ipaddress.IPv4Address(address.packed[12:])
    if address.teredo is not None:
        return address.teredo[1]
    if address.sixtofour is not None or address in _SIXTOFOUR:
        return address.sixtofour
    packed = address.packed
    if address in _NAT64 or (packed[:12] == bytes(12) and int(address) > 1):  # NAT64, compatible
        return ipaddress.IPv4Address(packed[12:])
    return None


def is_public_address(address: IPAddress) -> bool:
    """True for a globally routable unicast address whose wrapped IPv4 (if any) is one too."""
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address) and (inner := _embedded_ipv4(address)):
        candidates.append(inner)
    return all(
        a.is_global
        and not a.is_multicast
        and not a.is_unspecified
        and not any(a.version == n.version and a in n for n in _NOT_PUBLIC)
        for a in candidates
    )


@dataclass(frozen=True)
class AddressPolicy:
    """Private destinations a fetch may reach, and the ports public ones may use.

    Build it with :meth:`parse` from ``IMAGEMATCH_FETCH_ALLOW_PRIVATE``: empty/``false`` admits
    no private address; ``true`` admits every one (local trials and tests); otherwise a comma
    list of host names (``localhost``, ``minio.internal``) and networks (``10.0.0.0/8``,
    ``127.0.0.1``) admitted despite being private.
    """

    allow_all_private: bool = False
    private_hosts: frozenset[str] = frozenset()
    private_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    public_ports: frozenset[int] = DEFAULT_PORTS

    @classmethod
    def parse(cls, allow_private: str | bool, extra_ports: Iterable[int] = ()) -> AddressPolicy:
        """Raises ValueError for an entry that is neither a host name nor a network."""
        ports = DEFAULT_PORTS | frozenset(extra_ports)
        text = str(allow_private).strip().lower() if not isinstance(allow_private, bool) else ""
        if allow_private is True or text in _ALL:
            return cls(allow_all_private=True, public_ports=ports)
        if allow_private is False or text in _NONE:
            return cls(public_ports=ports)
        hosts: set[str] = set()
        networks = []
        for entry in (e.strip() for e in text.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if not all(part.isalnum() or part == "" for part in entry.replace("-", ".").split(".")):
                    raise ValueError(f"not a host name or network: {entry!r}") from None
                hosts.add(entry.rstrip("."))
        return cls(private_hosts=frozenset(hosts), private_networks=tuple(networks), public_ports=ports)

    def _private_allowed(self, host: str, address: IPAddress) -> bool:
        if self.allow_all_private or host.lower().rstrip(".") in self.private_hosts:
            return True
        return any(address.version == n.version and address in n for n in self.private_networks)

    def choose(self, host: str, port: int, addresses: list[str]) -> IPAddress:
        """The address to connect to for ``host:port``, after checking every answer.

        Raises PermanentError if any address is private and not admitted, if a public address
        is asked on a port outside the allowed ones, or if there is no address at all.
        """
        parsed = [ipaddress.ip_address(a.split("%")[0]) for a in addresses]
        if not parsed:
            raise PermanentError(f"{host} resolves to no address")
        for address in parsed:
            if is_public_address(address):
                if port not in self.public_ports:
                    raise PermanentError(
                        f"refusing to fetch from port {port} of {host}: allowed ports are "
                        f"{', '.join(map(str, sorted(self.public_ports)))}"
                    )
            elif not self._private_allowed(host, address):
                raise PermanentError(f"refusing to fetch from a private address: {host}")
        return parsed[0]
