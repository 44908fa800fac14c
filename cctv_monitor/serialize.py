"""What pages, the API and exports may show of stored camera data: the app-side point of redaction.

The web UI reads the inventory and never imports probes/; it takes the redaction and the control-character
stripping of the shared vocabulary (:mod:`probes.vocab`) from here, so there is one function for each
whether a value is stored, shown, exported or served.
"""

from __future__ import annotations

from probes.vocab import redact_text, redact_uri, strip_control

__all__ = ["redact_text", "redact_uri", "strip_control"]
