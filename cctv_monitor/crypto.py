"""Site credentials encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``).

The key comes from the ``CREDENTIAL_KEY`` setting (environment ``CCTV_CREDENTIAL_KEY``); when unset, a key
is generated once into ``<instance>/credential.key`` (mode 0600, written atomically) and reused. Losing that
file means the stored credentials cannot be read: re-import the project files. Passwords never reach a log
line. :func:`rotate_credential_key` (``cctv-monitor rotate-credential-key``) re-encrypts every stored
credential under a new key in one transaction.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterable

from cryptography.fernet import Fernet, InvalidToken
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from cctv_monitor.instance import read_or_create, write_atomic
from probes.targets import Credential

LOGGER = logging.getLogger(__name__)

KEY_FILE = "credential.key"
SETTING = "CCTV_CREDENTIAL_KEY"

__all__ = ["Credential", "CredentialKeyError", "encrypt_credentials", "decrypt_credentials", "credential_key",
           "rotate_credential_key"]


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
    # Created 0600 from the start (never readable by others, not even briefly) and atomically.
    key = read_or_create(path, Fernet.generate_key)
    _check_key(key, f"the key file {path}")
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
        pending = Path(app.instance_path) / (KEY_FILE + ".new")
        hint = (f"; {pending} exists: a key rotation was interrupted, run 'cctv-monitor rotate-credential-key' "
                "to finish it") if pending.exists() else ""
        raise CredentialKeyError(
            f"cannot decrypt stored site credentials: {SETTING} (or {Path(app.instance_path) / KEY_FILE}) is not "
            f"the key they were encrypted with; restore that key or re-import the project files{hint}") from None
    try:
        items = json.loads(plain)
        return [Credential(str(item["username"]), str(item.get("password") or "")) for item in items]
    except (ValueError, KeyError, TypeError) as exc:
        raise CredentialKeyError("stored site credentials decrypt but are not a list of "
                                 "{username, password}; re-import the project files") from exc


def _key_from_setting(app: Flask) -> bool:
    return bool(app.config.get("CREDENTIAL_KEY") or os.environ.get(SETTING))


def _all_decrypt(session: Session, key: bytes) -> bool:
    from cctv_monitor.models import Site

    fernet = Fernet(key)
    try:
        for token in session.scalars(select(Site.credentials_encrypted).where(Site.credentials_encrypted.is_not(None))):
            fernet.decrypt(token.encode("ascii"))
    except InvalidToken:
        return False
    return True


def _finish_interrupted(session: Session, path: Path, pending: Path) -> None:
    """A rotation stopped between its commit and installing the key: keep the key the data needs."""
    new_key = pending.read_bytes().strip()
    if _all_decrypt(session, new_key):
        os.replace(pending, path)
        LOGGER.warning("finished an interrupted key rotation: %s now holds the key the credentials use", path)
    else:
        pending.unlink()
        LOGGER.warning("removed %s left by an interrupted key rotation (nothing had been re-encrypted)", pending)


def rotate_credential_key(app: Flask, session: Session, new_key: bytes | None = None, *,
                          actor: str | None = None) -> int:
    """Re-encrypt every site's credentials under a new key in one transaction; returns how many sites.

    With the key in the instance file, ``new_key`` may be None (one is generated) and the file is replaced
    after the commit (the new key waits in ``credential.key.new`` until then, so a crash loses nothing:
    the next rotation finishes the job). With the key in ``CCTV_CREDENTIAL_KEY`` the caller gives the new
    key and sets the variable to it afterwards. Any credential that does not decrypt changes nothing.
    """
    from cctv_monitor import audit
    from cctv_monitor.models import Site

    from_setting = _key_from_setting(app)
    path = Path(app.instance_path) / KEY_FILE
    pending = path.with_name(KEY_FILE + ".new")
    if not from_setting and pending.exists():
        _finish_interrupted(session, path, pending)
    if from_setting and new_key is None:
        raise CredentialKeyError(f"the key comes from {SETTING}: give the new key (--new-key-stdin), then set "
                                 f"{SETTING} to it")
    old_key = credential_key(app)
    new_key = (new_key or Fernet.generate_key()).strip()
    _check_key(new_key, "the new key")
    if new_key == old_key:
        raise CredentialKeyError("the new key is the current key")
    old, new = Fernet(old_key), Fernet(new_key)
    try:
        # Locked (PostgreSQL) so an import running now cannot store a credential under the old key meanwhile.
        sites = list(session.scalars(select(Site).where(Site.credentials_encrypted.is_not(None))
                                     .order_by(Site.id).with_for_update()))
        for site in sites:
            try:
                plain = old.decrypt(site.credentials_encrypted.encode("ascii"))
            except InvalidToken:
                raise CredentialKeyError(f"the credentials of site #{site.id} ({site.code}) do not decrypt with the "
                                         "current key; nothing was changed") from None
            site.credentials_encrypted = new.encrypt(plain).decode("ascii")
        audit.record(session, "credential_key_rotated", actor=actor, object_type="credential_key",
                     object_repr=SETTING if from_setting else KEY_FILE, detail={"sites": len(sites)})
        if not from_setting:
            write_atomic(pending, new_key + b"\n")
        session.commit()
    except BaseException:
        session.rollback()
        if not from_setting:
            pending.unlink(missing_ok=True)
        raise
    if not from_setting:
        os.replace(pending, path)
    LOGGER.info("re-encrypted the credentials of %d site(s) under a new key", len(sites))
    return len(sites)
