"""Spec profiles as data: a YAML mapping parsed into a frozen :class:`Spec`.

A profile names its camera class and, under ``requirements``, one entry per requirement key. Each key
belongs to a rule class (see :mod:`cctv_monitor.compliance.rules`), which validates its own parameters;
every entry may carry ``source`` (the document the threshold comes from; default: the profile's
``source``), ``verified`` (false when we could not check the value against the official text),
``note`` and ``severity`` (overrides the rule's default). Errors name the field, e.g.
``requirements.resolution.min_width: expected a whole number, got 'abc'``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from cctv_monitor.compliance.requirement import Requirement, SpecError
from cctv_monitor.compliance.rules import RULES
from cctv_monitor.statuses import Severity

#: Camera classes of the MDES criteria we ship profiles for (``device_class`` of a profile).
DEVICE_CLASSES = ("fixed_indoor", "fixed_outdoor", "ptz", "fixed_analytics", "nvr")

_PROFILE_KEYS = {"kind", "code", "name_th", "name_en", "device_class", "source", "verified", "note",
                 "document", "requirements"}
_REQUIREMENT_META = {"source", "verified", "note", "severity"}


@dataclass(frozen=True)
class Spec:
    """A parsed spec profile: identity, document citation and requirements by key."""

    code: str
    name_th: str
    device_class: str
    requirements: Mapping[str, Requirement]
    name_en: str | None = None
    source: str | None = None
    verified: bool = False
    note: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, code: str) -> "Spec":
        """Parse and validate a profile mapping (YAML body); raise :class:`SpecError` naming the field."""
        if not isinstance(data, Mapping):
            raise SpecError("(profile)", f"expected a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - _PROFILE_KEYS)
        if unknown:
            raise SpecError(unknown[0], f"unknown field (allowed: {', '.join(sorted(_PROFILE_KEYS))})")
        if data.get("code") not in (None, code):
            raise SpecError("code", f"{data.get('code')!r} does not match the profile code {code!r}")
        if not code or not isinstance(code, str):
            raise SpecError("code", "missing")
        name_th = _text(data, "name_th", required=True)
        device_class = _text(data, "device_class", required=True)
        if device_class not in DEVICE_CLASSES:
            raise SpecError("device_class", f"{device_class!r} is not one of {', '.join(DEVICE_CLASSES)}")
        source = _text(data, "source")
        verified = _bool(data, "verified")
        reqs_raw = data.get("requirements")
        if not isinstance(reqs_raw, Mapping) or not reqs_raw:
            raise SpecError("requirements", "expected a non-empty mapping of requirement keys")
        requirements: dict[str, Requirement] = {}
        for key, body in reqs_raw.items():
            where = f"requirements.{key}"
            rule = RULES.get(str(key))
            if rule is None:
                raise SpecError(where, f"unknown requirement (known: {', '.join(sorted(RULES))})")
            if body is None:
                body = {}
            if not isinstance(body, Mapping):
                raise SpecError(where, f"expected a mapping, got {type(body).__name__}")
            params = rule.parse_params({k: v for k, v in body.items() if k not in _REQUIREMENT_META}, where)
            severity = body.get("severity")
            if severity is not None:
                try:
                    severity = Severity(str(severity))
                except ValueError:
                    raise SpecError(f"{where}.severity",
                                    f"{severity!r} is not one of {', '.join(s.value for s in Severity)}") from None
            requirements[str(key)] = Requirement(
                key=str(key), params=MappingProxyType(params),
                source=_text(body, "source", where=where) or source,
                verified=_bool(body, "verified", where=where, default=verified),
                note=_text(body, "note", where=where), severity=severity)
        return cls(code=code, name_th=name_th, name_en=_text(data, "name_en"), device_class=device_class,
                   requirements=MappingProxyType(requirements), source=source, verified=verified,
                   note=_text(data, "note"), raw=MappingProxyType(dict(data)))

    def __hash__(self) -> int:
        """Hash by code and content, so specs can key caches (the mapping fields are not hashable)."""
        return hash((self.code, self.content_hash()))

    def requirement(self, key: str) -> Requirement | None:
        """The requirement for ``key``, or None when the profile does not set it."""
        return self.requirements.get(key)

    def threshold(self, key: str, name: str, default: Any = None) -> Any:
        """One parameter of one requirement, e.g. ``spec.threshold("fps", "min")``."""
        req = self.requirements.get(key)
        return default if req is None else req.params.get(name, default)

    def to_mapping(self) -> dict[str, Any]:
        """The profile as given (for storing in ``SpecProfile.requirements``)."""
        return _plain(self.raw)

    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON of the profile (detects changed files on re-import)."""
        return hashlib.sha256(json.dumps(self.to_mapping(), sort_keys=True, ensure_ascii=False,
                                         default=str).encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _text(data: Mapping[str, Any], key: str, *, required: bool = False, where: str = "") -> str | None:
    name = f"{where}.{key}" if where else key
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise SpecError(name, "missing")
        return None
    if not isinstance(value, (str, int, float)):
        raise SpecError(name, f"expected text, got {type(value).__name__}")
    return str(value).strip()


def _bool(data: Mapping[str, Any], key: str, *, where: str = "", default: bool = False) -> bool:
    value = data.get(key, default)
    if isinstance(value, bool):
        return value
    raise SpecError(f"{where}.{key}" if where else key, f"expected true or false, got {value!r}")
