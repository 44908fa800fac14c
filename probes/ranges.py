"""The one parser of address ranges: project files, ``scan --range``, ``check --range``, sweeps, the dashboard.

Forms (all documented in the README):

- a CIDR ``10.20.1.0/24`` (its usable hosts are swept);
- one address ``10.20.1.7`` (swept on the site's ports);
- a range ``10.20.1.11-10.20.1.18`` or the short form ``10.20.1.11-18`` (every address of it, ends included);
- ``host:port`` or ``[v6]:port`` (probed on that port only, no sweep); a host name is allowed here.

Every problem raises :class:`RangeError` (a ``ValueError``) whose message names the text and lists the forms,
so each caller can show it as it is.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Iterable, Iterator, Union

__all__ = ["AddressRange", "RangeError", "parse_range", "parse_ranges", "split_ranges", "MAX_RANGE_ADDRESSES",
           "FORMS"]

IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

#: A range larger than a /16 is refused: it would take long and look like an attack.
MAX_RANGE_ADDRESSES = 65536
FORMS = "a CIDR such as 192.168.1.0/24, an address, a range 192.168.1.11-192.168.1.18 (or 192.168.1.11-18), " \
        "or host:port"
_HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}\.?)*$")
_DASH = re.compile(r"\s*[-\u2013\u2014]\s*")  # Office programs turn '-' into an en or em dash


class RangeError(ValueError):
    """An address range that cannot be used; the message says why and which forms are accepted."""


@dataclass(frozen=True)
class AddressRange:
    """One parsed entry: what it covers (``networks``) and, for ``host:port``, the single target."""

    text: str  # normalised text, as stored in the database
    kind: str  # "cidr", "address", "range" or "hostport"
    networks: tuple[IPNetwork, ...] = ()  # addresses covered (a range as its CIDR summary)
    first: IPAddress | None = None  # ends of a range or the address of a single entry
    last: IPAddress | None = None
    host: str | None = None  # host:port entries
    port: int | None = None

    @property
    def sweep(self) -> bool:
        """True when the entry is swept on the site's ports (everything but ``host:port``)."""
        return self.kind != "hostport"

    @property
    def size(self) -> int:
        """Number of addresses covered."""
        return sum(n.num_addresses for n in self.networks)

    def hosts(self) -> Iterator[str]:
        """Addresses to sweep: a CIDR's usable hosts, every address of a range, the address itself."""
        if self.kind == "cidr":
            net = self.networks[0]
            yield from (str(a) for a in (net.hosts() if net.num_addresses > 2 else net))
        elif self.kind in ("range", "address"):
            assert self.first is not None and self.last is not None
            make = type(self.first)  # an int alone would always become IPv4
            for value in range(int(self.first), int(self.last) + 1):
                yield str(make(value))
        elif self.host:
            yield self.host

    def __contains__(self, address: object) -> bool:
        try:
            ip = ipaddress.ip_address(str(address).strip("[]"))
        except ValueError:
            return str(address) == self.host
        return any(ip.version == n.version and ip in n for n in self.networks)


def _bad(text: str, why: str) -> RangeError:
    return RangeError(f"{text!r} is not an address range ({why}); write {FORMS}")


def parse_range(text: str, *, limit: int = MAX_RANGE_ADDRESSES) -> AddressRange:
    """Parse one entry in any of the accepted forms; :class:`RangeError` says what is wrong."""
    raw = str(text).strip()
    if not raw:
        raise RangeError(f"empty address range; write {FORMS}")
    if "/" in raw:
        try:
            net = ipaddress.ip_network(raw, strict=False)
        except ValueError:
            raise _bad(raw, "not a valid network address/prefix") from None
        _check_size(raw, net.num_addresses, limit)
        return AddressRange(text=str(net), kind="cidr", networks=(net,), first=net.network_address,
                            last=net.broadcast_address)
    dashed = _DASH.sub("-", raw)
    first_text, dash, last_text = dashed.partition("-")
    if dash and not dashed.startswith("[") and (_is_ip(first_text) or ":" not in raw):  # not cam-01.lan:80
        first = _address(first_text, raw)
        if last_text.isdigit() and first.version == 4 and "." not in last_text:  # 10.0.0.11-18
            last_text = first_text.rsplit(".", 1)[0] + "." + last_text
        last = _address(last_text, raw)
        if last.version != first.version:
            raise _bad(raw, "both ends must be IPv4 or both IPv6")
        if int(last) < int(first):
            raise _bad(raw, f"the range ends before it starts: {first} is after {last}")
        _check_size(raw, int(last) - int(first) + 1, limit)
        nets = tuple(ipaddress.summarize_address_range(first, last))  # type: ignore[arg-type]
        kind = "address" if first == last else "range"
        return AddressRange(text=f"{first}-{last}" if kind == "range" else str(first), kind=kind, networks=nets,
                            first=first, last=last)
    try:
        ip = ipaddress.ip_address(raw.strip("[]") if raw.startswith("[") and raw.endswith("]") else raw)
    except ValueError:
        return _host_port(raw)
    net = ipaddress.ip_network(ip)
    return AddressRange(text=str(ip), kind="address", networks=(net,), first=ip, last=ip)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip())
    except ValueError:
        return False
    return True


def _address(part: str, whole: str) -> IPAddress:
    try:
        return ipaddress.ip_address(part.strip())
    except ValueError:
        raise _bad(whole, f"{part.strip()!r} is not an IP address") from None


def _check_size(text: str, count: int, limit: int) -> None:
    if count > limit:
        raise RangeError(f"{text!r} has {count} addresses, more than the limit of {limit} (a /16); "
                         "split it into smaller ranges")


def _host_port(raw: str) -> AddressRange:
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise _bad(raw, "write IPv6 with a port as [addr]:port")
        port_text = rest[1:]
    else:
        host, sep, port_text = raw.rpartition(":")
        if not sep:
            raise _bad(raw, "not an IP address, and a host name needs a port (host:port)")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise _bad(raw, f"port {port_text!r} must be a number 1-65535")
    try:
        ip: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
        if not _HOSTNAME.match(host) or ":" in host:
            raise _bad(raw, f"{host!r} is neither an IP address nor a host name") from None
    nets = (ipaddress.ip_network(ip),) if ip is not None else ()
    shown = f"[{host}]" if ip is not None and ip.version == 6 else host
    return AddressRange(text=f"{shown}:{int(port_text)}", kind="hostport", networks=nets, first=ip, last=ip,
                        host=host, port=int(port_text))


def split_ranges(value: str | Iterable[object]) -> list[str]:
    """Entries of a cell or option: separated by commas, semicolons, spaces or new lines (``a - b`` kept whole)."""
    if isinstance(value, str):
        return [p for p in re.split(r"[\s,;]+", _DASH.sub("-", value.strip())) if p]
    return [str(v).strip() for v in value if str(v).strip()]


def parse_ranges(value: str | Iterable[object], *, limit: int = MAX_RANGE_ADDRESSES) -> list[AddressRange]:
    """Parse every entry of ``value`` (see :func:`split_ranges`); the first bad one raises :class:`RangeError`."""
    entries = [parse_range(p, limit=limit) for p in split_ranges(value)]
    if not entries:
        raise RangeError(f"no address range given; write {FORMS}")
    return entries
