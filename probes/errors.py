"""Probe exceptions: one hierarchy, each class mapped to a :class:`~probes.results.ProbeStatus`.

Low-level errors (aiohttp, zeep, lxml, OpenCV) are mapped at the boundary with
``raise Mapped(message) from exc``; the message says what the technician can do about it.

    ProbeError                      -> error
    ├── Unreachable                 -> unreachable     nothing answers: host down, port closed, no route
    ├── ProbeTimeout                -> timeout         connected, but no answer within the timeout
    ├── AuthFailed                  -> auth_failed     credentials rejected (or clock skew broke the digest)
    │   └── Locked                  -> auth_failed     the device locked the account or our address: stop trying
    ├── OnvifDisabled               -> onvif_disabled  an HTTP server answers, ONVIF is switched off
    ├── NotOnvif                    -> not_onvif       an HTTP server answers that is no ONVIF device
    ├── NotSupported                -> not_supported   a required ONVIF service or operation is missing
    └── MalformedReply              -> malformed_reply the reply cannot be read safely
        └── ReplyTooLarge           -> malformed_reply the reply exceeded the size cap and was refused
"""

from __future__ import annotations

from probes.results import ProbeStatus

__all__ = [
    "ProbeError",
    "Unreachable",
    "ProbeTimeout",
    "AuthFailed",
    "Locked",
    "OnvifDisabled",
    "NotOnvif",
    "NotSupported",
    "MalformedReply",
    "ReplyTooLarge",
]


class ProbeError(Exception):
    """Base class: a probe could not complete; ``status`` is the outcome class to report."""

    status: ProbeStatus = ProbeStatus.ERROR

    def __init__(self, message: str, *, excerpt: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: short, redacted excerpt of the offending reply, for diagnosis (``Observation.raw_errors``)
        self.excerpt = excerpt


class Unreachable(ProbeError):
    """Nothing answers at the address (connection refused, no route, connect timeout)."""

    status = ProbeStatus.UNREACHABLE


class ProbeTimeout(ProbeError):
    """The device accepted the connection but did not answer within the operation timeout."""

    status = ProbeStatus.TIMEOUT


class AuthFailed(ProbeError):
    """Every credential was rejected (WS-Security and HTTP Digest), or the clock broke the digest."""

    status = ProbeStatus.AUTH_FAILED


class Locked(AuthFailed):
    """The device says the account (or our address) is locked after failed logins; try nothing more."""


class OnvifDisabled(ProbeError):
    """An HTTP server answers but refuses ONVIF (403 page, ActionNotSupported on the device service)."""

    status = ProbeStatus.ONVIF_DISABLED


class NotOnvif(ProbeError):
    """An HTTP server answers that is not an ONVIF device (no SOAP envelope in the reply)."""

    status = ProbeStatus.NOT_ONVIF


class NotSupported(ProbeError):
    """A service or operation the probe needs is not implemented by the device."""

    status = ProbeStatus.NOT_SUPPORTED


class MalformedReply(ProbeError):
    """The reply is not well-formed, not the expected SOAP, or unsafe (DOCTYPE/entities)."""

    status = ProbeStatus.MALFORMED_REPLY


class ReplyTooLarge(MalformedReply):
    """The reply exceeded the size cap; it was not read further."""
