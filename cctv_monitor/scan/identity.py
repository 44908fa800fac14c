"""Who a camera is: MAC, then serial, then address over an in-memory index; conflicts flagged, never merged.

Nothing here touches the database: :class:`IdentityIndex` holds the devices loaded once per batch and
answers :meth:`IdentityIndex.identify` from memory. Garbage and placeholder values never identify, a MAC
reported at two addresses in one run is shared (not merged), and an identity never moves a device of a
project outside that project's site ranges (no hijack across agencies).
"""

from __future__ import annotations

from typing import Iterable, Sequence

from cctv_monitor.homes import ProjectRanges
from cctv_monitor.models import Device, RegisterEntry
from cctv_monitor.scan.findings import clip
from cctv_monitor.scan.scope import ScanScope
from probes.results import Observation as ObsData
from probes.vocab import is_placeholder_serial, is_valid_mac

__all__ = ["IdentityIndex", "identityless"]


def identityless(device: Device) -> bool:
    """True when ``device`` has neither a usable MAC nor a real serial (known by its address alone)."""
    if any(m and is_valid_mac(m) for m in [device.mac, *(device.macs or [])]):
        return False
    return not (device.serial and not is_placeholder_serial(device.serial))


class IdentityIndex:
    """Devices by MAC, serial and address, plus what this run has already seen."""

    def __init__(self, devices: Iterable[Device], scope: ScanScope, homes: ProjectRanges) -> None:
        """Index ``devices``; ``homes`` says which addresses lie inside which project's site ranges."""
        self.scope = scope
        self.homes = homes
        self.devices: dict[int, Device] = {}
        self.by_mac: dict[str, int] = {}
        self.by_serial: dict[str, int] = {}
        self.by_address: dict[str, int] = {}
        self.seen_this_run: dict[int, str] = {}  # device id -> address it answered at
        self.mac_claims: dict[str, tuple[int, str]] = {}  # mac -> (device id, address) in this run
        for device in devices:
            self.devices[device.id] = device
            self.index(device)

    def index(self, device: Device) -> None:
        """Add (or refresh) one device in the MAC, serial and address indexes."""
        # Each attribute read once (an ORM attribute is a descriptor call): this runs for every device
        # loaded and every camera recorded.
        device_id, serial, address = device.id, device.serial, device.address
        for mac in (device.mac, *(device.macs or ())):
            if mac and is_valid_mac(mac):
                self.by_mac.setdefault(mac, device_id)
        if serial and not is_placeholder_serial(serial):
            self.by_serial.setdefault(serial, device_id)
        if address:
            self.by_address[address] = device_id

    def claim(self, device: Device, macs: Sequence[str], address: str) -> None:
        """Remember that ``device`` answered at ``address`` with ``macs`` in this run (after its commit)."""
        self.devices[device.id] = device
        self.index(device)
        for mac in macs:
            self.mac_claims.setdefault(mac, (device.id, address))
            self.by_mac.setdefault(mac, device.id)
        self.by_address[address] = device.id
        self.seen_this_run[device.id] = address

    def at_home(self, project_id: int | None, address: str) -> bool:
        """True when ``address`` lies in the site ranges of project ``project_id`` (or the checked range)."""
        default = self.scope.default_project  # a check of a range: the operator put the project there
        return self.homes.holds(project_id, address) or (default is not None and default.id == project_id
                                                         and self.scope.covers(address))

    def flag(self, device: Device, text: str) -> None:
        """Add ``text`` to the device's identity conflict note (once)."""
        current = device.identity_conflict or ""
        if text not in current:
            device.identity_conflict = clip(f"{current}\n{text}".strip(), 4000)

    def identify(self, obs: ObsData) -> tuple[Device | None, list[str], list[str]]:
        """Find the device an answering observation belongs to: (device or None, usable MACs, conflicts)."""
        ident = obs.device
        macs = list(dict.fromkeys(m.lower() for m in (ident.macs if ident else ()) if m))
        serial = ident.serial if ident else None
        conflicts: list[str] = []
        usable = self._usable_macs(macs, obs.address, conflicts)
        real_serial = serial if serial and not is_placeholder_serial(serial) else None
        if serial and not real_serial:
            conflicts.append(f"placeholder serial {serial!r} ignored for identity")
        device = self._by_mac(usable, real_serial, obs.address, conflicts)
        if device is None and real_serial:
            device = self._by_serial(real_serial, usable, obs.address, conflicts)
        if device is None and not usable and not real_serial:
            # No identity of its own: the address is all we have (flagged so users know it is weak).
            device_id = self.by_address.get(obs.address)
            if device_id is not None:
                device = self.devices[device_id]
            conflicts.append("no usable MAC or serial: identified by address only")
        elif device is None and not any("not merged" in c for c in conflicts):
            # A device known only by its address (discovered, or read without identity) now says who it is.
            device = self._identityless_at(obs.address)
        if device is None and (usable or real_serial):
            # Its MAC or serial points at another device that may not move here (another project's, or a
            # shared MAC): the device recorded at this address with that same identity in an earlier scan
            # is this one again, not a new device each scan.
            device = self._twin_at(obs.address, usable, real_serial)
        if device is not None and device.id in self.seen_this_run and self.seen_this_run[device.id] != obs.address:
            conflicts.append(f"same identity as {self.seen_this_run[device.id]} (device #{device.id}) "
                             "in this scan: not merged")
            device = None
        return device, usable, conflicts

    def _device_at(self, address: str) -> Device | None:
        """The device last recorded at ``address``, if any."""
        device_id = self.by_address.get(address)
        return self.devices.get(device_id) if device_id is not None else None

    def _twin_at(self, address: str, usable: Sequence[str], real_serial: str | None) -> Device | None:
        """The device recorded at ``address`` that carries one of ``usable`` MACs or ``real_serial``."""
        device = self._device_at(address)
        if device is None:
            return None
        macs = {m for m in [device.mac, *(device.macs or [])] if m}
        return device if macs & set(usable) or (real_serial and device.serial == real_serial) else None

    def _identityless_at(self, address: str) -> Device | None:
        """The device at ``address`` when it has neither a usable MAC nor a real serial of its own."""
        device = self._device_at(address)
        return device if device is not None and identityless(device) else None

    def _usable_macs(self, macs: Sequence[str], address: str, conflicts: list[str]) -> list[str]:
        usable = []
        for mac in macs:
            if not is_valid_mac(mac):
                conflicts.append(f"garbage MAC {mac} ignored for identity")
                continue
            claim = self.mac_claims.get(mac)
            if claim is not None and claim[1] != address:
                other = self.devices.get(claim[0])
                conflicts.append(f"MAC {mac} is also reported by {claim[1]}"
                                 f"{f' (device #{other.id})' if other else ''}: shared MAC, not merged")
                if other is not None:
                    self.flag(other, f"MAC {mac} is also reported by {address}: shared MAC, not merged")
                continue
            usable.append(mac)
        return usable

    def _by_mac(self, usable: Sequence[str], real_serial: str | None, address: str,
                conflicts: list[str]) -> Device | None:
        for mac in usable:
            device_id = self.by_mac.get(mac)
            if device_id is None:
                continue
            candidate = self.devices[device_id]
            if real_serial and candidate.serial and not is_placeholder_serial(candidate.serial) \
                    and candidate.serial != real_serial:
                conflicts.append(f"MAC {mac} belongs to device #{candidate.id} with serial {candidate.serial!r}, "
                                 f"but this device reports serial {real_serial!r}: not merged")
                continue
            if self._foreign_move(candidate, address, conflicts, f"MAC {mac}"):
                continue
            return candidate
        return None

    def _by_serial(self, real_serial: str, usable: Sequence[str], address: str,
                   conflicts: list[str]) -> Device | None:
        device_id = self.by_serial.get(real_serial)
        if device_id is None:
            return None
        candidate = self.devices[device_id]
        cand_mac = candidate.mac if candidate.mac and is_valid_mac(candidate.mac) else None
        if cand_mac and usable and cand_mac not in usable:
            conflicts.append(f"serial {real_serial!r} belongs to device #{candidate.id} with MAC "
                             f"{cand_mac}, but this device reports {', '.join(usable)}: not merged")
            return None
        if self._foreign_move(candidate, address, conflicts, f"serial {real_serial!r}"):
            return None
        return candidate

    def _foreign_move(self, candidate: Device, address: str, conflicts: list[str], what: str) -> bool:
        """True (and both devices flagged) when ``candidate`` of a project would move outside its ranges."""
        if candidate.project_id is None or candidate.address == address or self.at_home(candidate.project_id, address):
            return False
        conflicts.append(f"{what} belongs to device #{candidate.id} of another project at {candidate.address}, "
                         f"but {address} lies outside that project's site ranges: not merged")
        self.flag(candidate, f"{what} is also reported by {address}, outside this project's site ranges: "
                             "not merged, nothing changed")
        return True

    def device_for_entry(self, entry: RegisterEntry) -> Device | None:
        """The device a register entry describes (by MAC, serial, then an earlier match), if any."""
        for device_id in (self.by_mac.get((entry.mac or "").lower()), self.by_serial.get(entry.serial or "")):
            device = self.devices.get(device_id) if device_id is not None else None
            # A device claiming the entry's MAC/serial outside the project's ranges is not the project's.
            if device is not None and (not device.address or self.at_home(entry.project_id, device.address)):
                return device
        for device in self.devices.values():
            if device.register_entry_id == entry.id:
                return device
        return None
