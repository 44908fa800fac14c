"""Network zones and their keys: credentials in work units are encrypted for the zone (no Flask, no database).

A zone's key file (``<zone key dir>/<zone>.key``, mode 0600) holds one Fernet key per line, newest first.
The central server encrypts work units with the newest key; a zone worker decrypts with any key of its file
(:class:`cryptography.fernet.MultiFernet`), so a rotation works in three steps: ``zone-key rotate Z`` on the
server, copy the file to the zone's workers, ``zone-key retire Z`` to drop the old key. The broker only
ever carries Fernet tokens, never a password.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from cctv_monitor.instance import write_atomic

__all__ = ["CENTRAL", "ZoneKeyError", "check_zone", "key_path", "create_zone_key", "rotate_zone_key",
           "retire_old_keys", "load_keys", "seal", "unseal", "queue_for"]

CENTRAL = "central"
_ZONE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class ZoneKeyError(Exception):
    """A zone name or zone key file is invalid, missing, or does not open a work unit."""


def check_zone(name: str) -> str:
    """The zone name, or :class:`ZoneKeyError` naming what is wrong (lower-case letters, digits, - and _)."""
    zone = (name or "").strip()
    if not _ZONE.match(zone):
        raise ZoneKeyError(f"invalid zone name {name!r}: use 1-63 lower-case letters, digits, '-' or '_', "
                           "starting with a letter or digit")
    return zone


def queue_for(zone: str) -> str:
    """The broker queue of a zone's work units."""
    return f"probe.{check_zone(zone)}"


def key_path(folder: str | Path, zone: str) -> Path:
    """Where the key file of ``zone`` lives in ``folder``."""
    return Path(folder) / f"{check_zone(zone)}.key"


def create_zone_key(folder: str | Path, zone: str) -> Path:
    """Write a new key file for ``zone`` (0600); an existing one is never overwritten."""
    path = key_path(folder, zone)
    Path(folder).mkdir(parents=True, exist_ok=True, mode=0o700)
    if not write_atomic(path, Fernet.generate_key() + b"\n", replace=False):
        raise ZoneKeyError(f"{path} exists already: use 'zone-key rotate {zone}' for a new key")
    return path


def rotate_zone_key(folder: str | Path, zone: str) -> Path:
    """Put a new key first in the zone's file (older ones stay, so units in flight still open)."""
    path = key_path(folder, zone)
    keys = _read(path)
    write_atomic(path, b"\n".join([Fernet.generate_key(), *keys]) + b"\n")
    return path


def retire_old_keys(folder: str | Path, zone: str) -> int:
    """Keep only the newest key of the zone's file; returns how many were removed."""
    path = key_path(folder, zone)
    keys = _read(path)
    write_atomic(path, keys[0] + b"\n")
    return len(keys) - 1


def _read(path: Path) -> list[bytes]:
    try:
        lines = [line.strip() for line in path.read_bytes().splitlines() if line.strip()]
    except FileNotFoundError:
        raise ZoneKeyError(f"no zone key file {path}: create it with 'cctv-monitor zone-key create "
                           f"{path.stem}'") from None
    except OSError as exc:
        raise ZoneKeyError(f"cannot read zone key file {path}: {exc.strerror}") from None
    if path.stat().st_mode & 0o077:
        raise ZoneKeyError(f"zone key file {path} is readable by others: chmod 600 {path}")
    for number, key in enumerate(lines, 1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ZoneKeyError(f"{path} line {number} is not a Fernet key") from None
    if not lines:
        raise ZoneKeyError(f"zone key file {path} is empty")
    return lines


def load_keys(folder: str | Path, zone: str) -> MultiFernet:
    """Every key of the zone, newest first (encrypts with the newest, decrypts with any)."""
    return MultiFernet([Fernet(k) for k in _read(key_path(folder, zone))])


def seal(keys: MultiFernet, payload: Any) -> str:
    """Fernet token of the JSON of ``payload`` (what travels through the broker)."""
    return keys.encrypt(json.dumps(payload, ensure_ascii=False).encode()).decode("ascii")


def unseal(keys: MultiFernet, token: str, zone: str) -> Any:
    """The payload of a token from :func:`seal`; a key of another zone or an old retired key is named."""
    try:
        return json.loads(keys.decrypt(token.encode("ascii")))
    except (InvalidToken, ValueError):
        raise ZoneKeyError(f"work unit for zone {zone!r} does not open with this worker's key file: the server "
                           "encrypted it with another key (rotated? copy the server's key file for the zone)") from None
