"""Discovery results as observations: what ``discover --save`` writes and a scan on an interface records.

WS-Discovery, Hikvision SADP, Dahua discovery and a range sweep each see part of a device without any
credential (SADP and Dahua: model, serial, firmware, MAC; WS-Discovery: service addresses and scopes; a
sweep: an address that answers). :func:`discovered_observations` merges what they said about one host
into one :class:`~probes.results.Observation`, so ingesting the file (or a scan on an interface) makes one
device per host, identified like any other by MAC, then serial, then address:

- status ``not_activated`` when SADP reports a Hikvision device that was never activated (no admin
  password set: anyone on the LAN can set one and take it over), the observation that becomes a finding;
- status ``discovered`` otherwise: presence and identity, no verdict (the device is read by the next scan
  that covers its address).

``protocols`` names the discovery protocols that answered (``ws-discovery``, ``sadp``, ``dhdiscover``,
``sweep``) and ``field_sources["identity"]`` the one the identity came from. Pure functions, no I/O.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Iterable

from probes.discovery import DiscoveredDevice
from probes.onvif_values import scope_fields
from probes.results import DeviceIdentity, Observation, ProbeStatus, utc_now_iso
from probes.targets import Target
from probes.vendor_discovery import VendorDiscovered

__all__ = ["discovered_observations", "PROTOCOL_NAMES", "NOT_ACTIVATED_ERROR"]

#: ``VendorDiscovered.method`` -> the protocol name observations carry (``dahua`` is the HTTP API).
PROTOCOL_NAMES = {"sadp": "sadp", "dahua": "dhdiscover"}

NOT_ACTIVATED_ERROR = ("SADP reports this Hikvision device as never activated (no admin password set): "
                       "activate it with a strong password (SADP tool or its web page) before anything else")


@dataclass
class _Host:
    """What the discovery protocols said about one host, merged."""

    host: str
    port: int | None = None
    protocols: list[str] = field(default_factory=list)
    vendor: VendorDiscovered | None = None
    wsd: DiscoveredDevice | None = None

    def add(self, protocol: str) -> None:
        if protocol not in self.protocols:
            self.protocols.append(protocol)


def discovered_observations(*, wsd: Iterable[DiscoveredDevice] = (), vendor: Iterable[VendorDiscovered] = (),
                            swept: Iterable[Target] = (), observed_at: str | None = None) -> list[Observation]:
    """One observation per host from WS-Discovery devices, SADP/Dahua devices and sweep targets."""
    hosts: dict[str, _Host] = {}

    def at(host: str) -> _Host:
        return hosts.setdefault(host, _Host(host))

    for target in swept:  # the port that answered ONVIF (or the vendor's web server) comes first
        entry = at(target.host)
        entry.port = entry.port or target.port
        entry.add("sweep")
    for dev in wsd:
        entry = at(dev.address)
        entry.wsd = entry.wsd or dev
        entry.port = entry.port or dev.target().port
        entry.add("ws-discovery")
    for found in vendor:
        entry = at(found.address)
        if entry.vendor is None or (found.method == "sadp" and entry.vendor.method != "sadp"):
            entry.vendor = found
        entry.port = entry.port or found.http_port
        entry.add(PROTOCOL_NAMES.get(found.method, found.method))
    when = observed_at or utc_now_iso()
    return [_observation(entry, when) for _, entry in sorted(hosts.items(), key=lambda kv: _ip_key(kv[0]))]


def _observation(entry: _Host, observed_at: str) -> Observation:
    """The observation of one host: its identity from the vendor reply, scopes and XAddrs from WS-Discovery."""
    vendor, wsd = entry.vendor, entry.wsd
    name = location = None
    profiles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    if wsd is not None:
        scopes = wsd.scopes
        name, location, profiles = scope_fields(scopes)
    identity = None
    if vendor is not None or wsd is not None:
        identity = DeviceIdentity(
            manufacturer=vendor.manufacturer if vendor else None, model=vendor.model if vendor else None,
            firmware=vendor.firmware if vendor else None, serial=vendor.serial if vendor else None,
            macs=(vendor.mac,) if vendor and vendor.mac else (), name=name, location=location, scopes=scopes,
            onvif_profiles=profiles)
    not_activated = vendor is not None and vendor.method == "sadp" and vendor.activated is False
    source = PROTOCOL_NAMES.get(vendor.method, vendor.method) if vendor else ("ws-discovery" if wsd else None)
    bracketed = f"[{entry.host}]" if ":" in entry.host else entry.host
    return Observation(
        address=f"{bracketed}:{entry.port or 80}",
        status=ProbeStatus.NOT_ACTIVATED if not_activated else ProbeStatus.DISCOVERED,
        error=NOT_ACTIVATED_ERROR if not_activated else None, observed_at=observed_at, device=identity,
        xaddrs=wsd.xaddrs if wsd else (), protocols=tuple(entry.protocols),
        field_sources={"identity": source} if source else {})


def _ip_key(host: str) -> tuple[int, ...]:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return (1,)
    return (0, ip.version, int(ip))
