"""Observations as a JSON-lines file, for a technician on a site with no link to the server.

One line per observation: the ``probe --json`` object (with its ``schema_version``) plus its
``observation_id`` (made here when the probe gave none) and the ``tool_version`` that wrote it. Readers
accept older schema versions (unknown keys are ignored, missing ones take their defaults), so a file saved
by an older laptop still imports. Dependency-free, like the rest of probes/.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import IO, Iterable, Iterator

from probes.results import SCHEMA_VERSION, Observation

__all__ = ["FieldFileError", "with_id", "to_line", "write", "read", "MAX_LINE_BYTES", "MAX_LINES"]

#: A line longer than this is refused (a camera's observation with thumbnails is well under 1 MB).
MAX_LINE_BYTES = 4 * 1024 * 1024
#: More observations than this in one file are refused (a province is ~10,000 cameras).
MAX_LINES = 200_000


class FieldFileError(ValueError):
    """The file cannot be read; the message names the line and what is wrong with it."""


def with_id(obs: Observation) -> Observation:
    """``obs`` with an observation id (a random UUID when it has none)."""
    return obs if obs.observation_id else obs.with_updates(observation_id=uuid.uuid4().hex)


def to_line(obs: Observation, *, tool_version: str) -> str:
    """One JSON line for ``obs`` (given an id if it had none)."""
    data = with_id(obs).to_dict()
    data["tool_version"] = tool_version
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def write(path: str | Path, observations: Iterable[Observation], *, tool_version: str, append: bool = True) -> int:
    """Append (or write) the observations to ``path``; returns how many lines were written."""
    count = 0
    with open(path, "a" if append else "w", encoding="utf-8") as handle:
        for obs in observations:
            handle.write(to_line(obs, tool_version=tool_version) + "\n")
            count += 1
    return count


def read(path: str | Path) -> list[Observation]:
    """All observations of a file; :class:`FieldFileError` names the first bad line."""
    try:
        with open(path, "rb") as handle:
            return list(_parse(handle, str(path)))
    except OSError as exc:
        raise FieldFileError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def _parse(handle: IO[bytes], name: str) -> Iterator[Observation]:
    for number, raw in enumerate(handle, start=1):
        if number > MAX_LINES:
            raise FieldFileError(f"{name}: more than {MAX_LINES} observations; split the file")
        if len(raw) > MAX_LINE_BYTES:
            raise FieldFileError(f"{name} line {number}: longer than {MAX_LINE_BYTES} bytes")
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FieldFileError(f"{name} line {number}: not JSON ({exc.msg} at column {exc.colno})") from None
        yield from_object(data, where=f"{name} line {number}")


def from_object(data: object, *, where: str) -> Observation:
    """One observation from a decoded JSON object; :class:`FieldFileError` says which field is wrong."""
    if not isinstance(data, dict):
        raise FieldFileError(f"{where}: expected a JSON object, got {type(data).__name__}")
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise FieldFileError(f"{where}: schema_version must be a positive integer, got {version!r}")
    if version > SCHEMA_VERSION:
        raise FieldFileError(f"{where}: schema_version {version} is newer than this program reads "
                             f"({SCHEMA_VERSION}); update cctv-monitor")
    for key in ("address", "status"):
        if not isinstance(data.get(key), str) or not data.get(key):
            raise FieldFileError(f"{where}: field {key!r} is missing or not a string")
    oid = data.get("observation_id")
    if oid is not None and (not isinstance(oid, str) or not 0 < len(oid) <= 128):
        raise FieldFileError(f"{where}: field 'observation_id' must be a string of 1 to 128 characters")
    try:
        return Observation.from_dict(data)
    except ValueError as exc:  # e.g. an unknown status value
        raise FieldFileError(f"{where}: {exc}") from None
    except (TypeError, KeyError, AttributeError) as exc:
        raise FieldFileError(f"{where}: a field has the wrong type ({exc})") from None
