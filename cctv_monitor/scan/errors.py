"""Errors of the scan core; each message says what is wrong and, where it can, what to do."""

from __future__ import annotations

__all__ = ["ScanError", "ScanTargetError", "ScanAlreadyRunning", "RunClosedError", "LeaseLostError"]


class ScanError(Exception):
    """A scan cannot start or failed; the message says why."""


class ScanTargetError(ScanError):
    """The scan target (site, project, agency, range) does not exist or is malformed."""


class ScanAlreadyRunning(ScanError):
    """A run of the same target is in progress (here or on another machine holding a live lease)."""


class RunClosedError(ScanError):
    """Observations were sent to a run that is no longer open (closed, failed or interrupted)."""


class LeaseLostError(ScanError):
    """The run's lease expired and someone marked it interrupted; the owner must stop writing to it."""
