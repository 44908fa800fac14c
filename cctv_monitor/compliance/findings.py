"""What a rule concludes: a frozen :class:`FindingResult` (no database, no Flask)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cctv_monitor.statuses import Severity

#: Severities that make a device non-compliant.
BLOCKING = frozenset({Severity.CRITICAL, Severity.MAJOR})


@dataclass(frozen=True)
class FindingResult:
    """One rule's verdict on one device or project: what was expected, what was seen, and why it matters."""

    rule_id: str
    severity: Severity
    expected: str | None
    observed: str | None
    source: str | None
    message_th: str
    message_en: str
    subject: str | None = None  # profile token, register label, site code... (None: the device itself)

    @property
    def blocking(self) -> bool:
        """True when this finding makes the device non-compliant (critical or major)."""
        return self.severity in BLOCKING

    def message(self, lang: str = "th") -> str:
        """Message in ``lang`` ("th" or "en")."""
        return self.message_th if lang == "th" else self.message_en

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (severity as its value)."""
        return {"rule_id": self.rule_id, "severity": self.severity.value, "expected": self.expected,
                "observed": self.observed, "source": self.source, "message_th": self.message_th,
                "message_en": self.message_en, "subject": self.subject}
