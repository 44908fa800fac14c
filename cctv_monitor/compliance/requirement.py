"""One requirement of a spec profile and the error a profile raises: what rules and profiles share.

Kept apart from :mod:`cctv_monitor.compliance.spec` so that the arrows run one way: spec -> rules ->
requirement (a rule validates its own parameters; a profile looks its rules up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from cctv_monitor.statuses import Severity


class SpecError(ValueError):
    """A spec profile is invalid; ``field`` names the offending field (dotted path)."""

    def __init__(self, field_name: str, message: str) -> None:
        """Keep the field apart so importers can report it in their own format."""
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Requirement:
    """One requirement of a profile: validated parameters of one rule plus where they come from."""

    key: str
    params: Mapping[str, Any]
    source: str | None = None
    verified: bool = False
    note: str | None = None
    severity: Severity | None = None  # None: the rule's default
