"""Settings: defaults that run out of the box, overridden by an instance config file and the environment.

Order (later wins): :class:`Config` defaults, ``instance/config.py`` (or ``CCTV_CONFIG_FILE``), ``CCTV_*``
environment variables, then the mapping a caller passes to ``create_app``. Invalid values fail fast with
a :class:`ConfigError` that names the setting.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(Exception):
    """A setting is missing or invalid; the message names it."""


class Config:
    """Default settings."""

    # Where the project's data (spec profiles, example projects, fleets) lives.
    CONFIG_DIR = str(REPO_ROOT / "config")
    # None: SQLite file in the instance folder (see cctv_monitor.db).
    DATABASE_URL: str | None = None
    SECRET_KEY: str | None = None  # None: generated once and kept in the instance folder
    CREDENTIAL_KEY: str | None = None  # Fernet key for site credentials; None: instance/credential.key
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False  # set CCTV_SESSION_COOKIE_SECURE=1 behind HTTPS
    DEFAULT_LANGUAGE = "th"
    # A signed-in session ends this long after log-in, however active it is (see README "Security").
    SESSION_ABSOLUTE_LIFETIME_S = 12 * 3600
    # Log-in and API-token throttling (cctv_monitor.throttle): free failures, then a doubling delay.
    LOGIN_THROTTLE_FREE_FAILURES = 5
    LOGIN_THROTTLE_BASE_S = 1.0
    LOGIN_THROTTLE_MAX_S = 900.0
    LOGIN_THROTTLE_FORGET_S = 3600.0
    # Sending the SMTP password over a connection without TLS needs this explicitly.
    SMTP_ALLOW_PLAINTEXT_AUTH = False
    # Probing defaults
    ONVIF_PORTS = [80, 8000, 8080, 8899, 443]
    PROBE_TIMEOUT_S = 5.0
    PROBE_CONCURRENCY = 64
    PROBE_PER_HOST_LIMIT = 3  # probes.soap.DEFAULT_PER_HOST
    CREDENTIAL_ATTEMPTS = 3  # credentials tried per device and scan (cameras lock after 5-7 failures)
    # Stream checks at once come from a memory budget (a packet reader costs a few MB, the small decoder
    # pool more); STREAM_WORKERS is only an upper cap (benchmarks/stream_checks.py). A site gets at most
    # STREAM_PER_SITE at once; a check reads packets until the second keyframe or STREAM_SAMPLE_S.
    STREAM_MEMORY_MB = 600.0
    STREAM_WORKERS = 128
    STREAM_PER_SITE = 4
    STREAM_SAMPLE_S = 2.5
    STREAM_TIMEOUT_S = 10.0
    # A run not renewed for this long (its owner died, here or on another machine) is marked interrupted.
    SCAN_LEASE_S = 120.0
    # POST /api/v1/observations: largest body and most observations in one batch.
    API_OBSERVATIONS_MAX_BYTES = 16 * 1024 * 1024
    API_OBSERVATIONS_MAX_ITEMS = 2000
    SCHEDULER_ENABLED = False  # `serve` and `worker` turn it on
    # Zones (README "Running a province"): with a broker, scans go to zone workers as work units.
    BROKER_URL: str | None = None
    ZONE_KEY_DIR: str | None = None  # None: <instance>/zone-keys
    RUN_DEADLINE_S = 3600.0  # a distributed run closes by then; units not done expire
    ZONE_UNIT_SIZE = 64  # addresses per work unit
    INGEST_QUEUE = "ingest"  # another name keeps two installations on one broker apart
    TESTING = False


class TestConfig(Config):
    """Settings for the test suite."""

    TESTING = True
    SECRET_KEY = "test-secret"
    WTF_CSRF_ENABLED = True


_ENV_TYPES: dict[str, type] = {
    "DATABASE_URL": str,
    "SECRET_KEY": str,
    "CREDENTIAL_KEY": str,
    "CONFIG_DIR": str,
    "DEFAULT_LANGUAGE": str,
    "SESSION_COOKIE_SECURE": bool,
    "SESSION_ABSOLUTE_LIFETIME_S": int,
    "LOGIN_THROTTLE_FREE_FAILURES": int,
    "LOGIN_THROTTLE_BASE_S": float,
    "LOGIN_THROTTLE_MAX_S": float,
    "LOGIN_THROTTLE_FORGET_S": float,
    "SMTP_ALLOW_PLAINTEXT_AUTH": bool,
    "SMTP_CA_FILE": str,
    "PROBE_TIMEOUT_S": float,
    "PROBE_CONCURRENCY": int,
    "PROBE_PER_HOST_LIMIT": int,
    "CREDENTIAL_ATTEMPTS": int,
    "STREAM_WORKERS": int,
    "STREAM_MEMORY_MB": float,
    "STREAM_PER_SITE": int,
    "STREAM_SAMPLE_S": float,
    "STREAM_TIMEOUT_S": float,
    "SCAN_LEASE_S": float,
    "API_OBSERVATIONS_MAX_BYTES": int,
    "API_OBSERVATIONS_MAX_ITEMS": int,
    "SCHEDULER_ENABLED": bool,
    "BROKER_URL": str,
    "ZONE_KEY_DIR": str,
    "RUN_DEADLINE_S": float,
    "ZONE_UNIT_SIZE": int,
    "INGEST_QUEUE": str,
}


def from_environment(environ: os._Environ[str] | dict[str, str] | None = None) -> dict[str, Any]:
    """Read ``CCTV_<NAME>`` variables for the known settings, converting and validating each."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, kind in _ENV_TYPES.items():
        raw = environ.get(f"CCTV_{name}")
        if raw is None or raw == "":
            continue
        values[name] = _convert(f"CCTV_{name}", raw, kind)
    return values


def _convert(name: str, raw: str, kind: type) -> Any:
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name}={raw!r}: expected a boolean (1/0, true/false, yes/no)")
    try:
        return kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r}: expected {kind.__name__}") from exc


def validate(config: dict[str, Any]) -> None:
    """Fail fast on settings that cannot work, naming the setting."""
    if config.get("DEFAULT_LANGUAGE") not in {"th", "en"}:
        raise ConfigError(f"DEFAULT_LANGUAGE={config.get('DEFAULT_LANGUAGE')!r}: expected 'th' or 'en'")
    if not Path(config["CONFIG_DIR"]).is_dir():
        raise ConfigError(f"CONFIG_DIR={config['CONFIG_DIR']!r}: not a directory")
    for name in ("PROBE_CONCURRENCY", "PROBE_PER_HOST_LIMIT", "STREAM_WORKERS", "STREAM_PER_SITE",
                 "CREDENTIAL_ATTEMPTS", "SESSION_ABSOLUTE_LIFETIME_S", "LOGIN_THROTTLE_FREE_FAILURES",
                 "API_OBSERVATIONS_MAX_BYTES", "API_OBSERVATIONS_MAX_ITEMS"):
        if int(config.get(name, 1)) < 1:
            raise ConfigError(f"{name}={config.get(name)!r}: must be at least 1")
    for name in ("PROBE_TIMEOUT_S", "STREAM_TIMEOUT_S", "STREAM_MEMORY_MB", "STREAM_SAMPLE_S", "SCAN_LEASE_S",
                 "LOGIN_THROTTLE_BASE_S",
                 "LOGIN_THROTTLE_MAX_S", "LOGIN_THROTTLE_FORGET_S"):
        if float(config.get(name, 1)) <= 0:
            raise ConfigError(f"{name}={config.get(name)!r}: must be positive")
