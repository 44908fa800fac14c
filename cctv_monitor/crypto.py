"""Site credentials encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``).

The key comes from the ``CREDENTIAL_KEY`` setting (environment ``CCTV_CREDENTIAL_KEY``); when unset, a key
is generated once into ``<instance>/credential.key`` (mode 0600) and reused. Losing that file means the
stored credentials cannot be read: re-import the project files. Passwords never reach a log line.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterable

from cryptography.fernet import Fernet, InvalidToken
from flask import Flask

from probes.targets import Credential

LOGGER = logging.getLogger(__name__)

KEY_FILE = "credential.key"
SETTING = "CCTV_CREDENTIAL_KEY"

__all__ = ["Credential", "CredentialKeyError", "encrypt_credentials", "decrypt_credentials", "credential_key"]


class CredentialKeyError(Exception):
    """The credential key is malformed or is not the key the stored credentials were encrypted with."""


def credential_key(app: Flask) -> bytes:
    """The Fernet key: setting/environment first, else the instance key file (created on first use)."""
    configured = app.config.get("CREDENTIAL_KEY") or os.environ.get(SETTING)
    if configured:
        key = configured.encode() if isinstance(configured, str) else configured
        _check_key(key, f"{SETTING} (setting CREDENTIAL_KEY)")
        return key
    path = Path(app.instance_path) / KEY_FILE
    if path.exists():
        key = path.read_bytes().strip()
        _check_key(key, f"the key file {path}")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # Create with 0600 from the start so the key is never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    LOGGER.info("generated a new credential key in %s", path)
    return key


def _check_key(key: bytes, where: str) -> None:
    try:
        Fernet(key)
    except (ValueError, TypeError) as exc:
        raise CredentialKeyError(f"{where} is not a valid Fernet key (32 url-safe base64-encoded bytes; "
                                 f"make one with: python -c 'from cryptography.fernet import Fernet; "
                                 f"print(Fernet.generate_key().decode())')") from exc


def encrypt_credentials(app: Flask, creds: Iterable[Credential | tuple[str, str]]) -> str:
    """Fernet token (text) of the JSON list of ``{username, password}``."""
    items = []
    for cred in creds:
        username, password = (cred.username, cred.password) if isinstance(cred, Credential) else cred
        items.append({"username": username, "password": password})
    return Fernet(credential_key(app)).encrypt(json.dumps(items, ensure_ascii=False).encode()).decode("ascii")


def decrypt_credentials(app: Flask, token: str | None) -> list[Credential]:
    """The credentials of a token from :func:`encrypt_credentials`; a wrong key raises a clear error."""
    if not token:
        return []
    try:
        plain = Fernet(credential_key(app)).decrypt(token.encode("ascii"))
    except InvalidToken:
        raise CredentialKeyError(
            f"cannot decrypt stored site credentials: {SETTING} (or {Path(app.instance_path) / KEY_FILE}) is not "
            "the key they were encrypted with; restore that key or re-import the project files") from None
    try:
        items = json.loads(plain)
        return [Credential(str(item["username"]), str(item.get("password") or "")) for item in items]
    except (ValueError, KeyError, TypeError) as exc:
        raise CredentialKeyError("stored site credentials decrypt but are not a list of "
                                 "{username, password}; re-import the project files") from exc
