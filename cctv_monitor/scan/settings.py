"""Scan settings as one small frozen dataclass, built from any mapping (the app config, env, a test)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["ScanSettings", "DEFAULT_LEASE_S"]

#: How long a run stays alive without a heartbeat; owners renew at a third of it.
DEFAULT_LEASE_S = 120.0


@dataclass(frozen=True)
class ScanSettings:
    """Everything the scan core reads from configuration."""

    secret_key: bytes = b""  # keys credential fingerprints (never stored in clear)
    ports: tuple[int, ...] = (80,)
    probe_timeout_s: float = 5.0
    probe_concurrency: int = 64
    per_host_limit: int = 3  # probes.soap.DEFAULT_PER_HOST
    stream_workers: int = 128
    stream_memory_mb: float = 600.0
    stream_per_site: int = 4
    stream_sample_s: float = 2.5
    stream_timeout_s: float = 10.0
    credential_attempts: int = 3
    lease_s: float = DEFAULT_LEASE_S

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> "ScanSettings":
        """Read the application's configuration keys (``ONVIF_PORTS``, ``PROBE_TIMEOUT_S``...)."""
        from cctv_monitor.credentials import DEFAULT_MAX_ATTEMPTS

        return cls(secret_key=str(config.get("SECRET_KEY") or "").encode(),
                   ports=tuple(int(p) for p in (config.get("ONVIF_PORTS") or [80])),
                   probe_timeout_s=float(config.get("PROBE_TIMEOUT_S", 5.0)),
                   probe_concurrency=int(config.get("PROBE_CONCURRENCY", 64)),
                   per_host_limit=int(config.get("PROBE_PER_HOST_LIMIT", 3)),
                   stream_workers=int(config.get("STREAM_WORKERS", 128)),
                   stream_memory_mb=float(config.get("STREAM_MEMORY_MB", 600.0)),
                   stream_per_site=int(config.get("STREAM_PER_SITE", 4)),
                   stream_sample_s=float(config.get("STREAM_SAMPLE_S", 2.5)),
                   stream_timeout_s=float(config.get("STREAM_TIMEOUT_S", 10.0)),
                   credential_attempts=int(config.get("CREDENTIAL_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)),
                   lease_s=float(config.get("SCAN_LEASE_S", DEFAULT_LEASE_S)))
