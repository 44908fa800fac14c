"""The instance folder and its secrets: 0700 folder, 0600 files, written atomically.

The Flask secret key, the credential key and the SQLite database (with its ``-wal`` and ``-shm`` files)
live in the instance folder. Secrets are written to a temporary file in the same folder (created 0600 by
``mkstemp``), flushed to disk, then put in place in one step: ``os.link`` when the file must not exist yet
(two processes starting at once then agree on one key instead of each keeping its own), ``os.replace``
when it is replaced (key rotation). A reader therefore never sees a half-written key.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Callable

LOGGER = logging.getLogger(__name__)

__all__ = ["FOLDER_MODE", "FILE_MODE", "secure_folder", "tighten", "write_atomic", "read_or_create",
           "prepare_sqlite_file"]

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def secure_folder(path: str | Path) -> Path:
    """Create ``path`` (and parents) if needed and make it 0700."""
    folder = Path(path)
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    tighten(folder, FOLDER_MODE)
    return folder


def tighten(path: Path, mode: int = FILE_MODE) -> None:
    """Remove permissions beyond ``mode`` from an existing file or folder we own (logged when it changes)."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current & ~mode:
        try:
            os.chmod(path, current & mode)
        except PermissionError:  # not ours (e.g. a shared folder above): say so rather than fail
            LOGGER.warning("%s is mode %o and cannot be made %o: restrict it by hand", path, current, mode)
            return
        LOGGER.warning("%s was mode %o; made it %o", path, current, current & mode)


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened for fsync
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: str | Path, data: bytes, *, replace: bool = True) -> bool:
    """Write ``data`` to ``path`` (mode 0600) in one step; with ``replace=False`` keep an existing file.

    Returns True when ``path`` now holds ``data``, False when it existed already and ``replace`` was False.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # fails if it exists: never overwrite a key another process just made
            except FileExistsError:
                return False
        _fsync_folder(target.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def read_or_create(path: str | Path, make: Callable[[], bytes]) -> bytes:
    """The stripped content of the secret file ``path``; created 0600 from ``make()`` when missing."""
    target = Path(path)
    secure_folder(target.parent)
    if not target.exists():
        if write_atomic(target, make() + b"\n", replace=False):
            LOGGER.info("created %s", target)
    tighten(target)
    return target.read_bytes().strip()


def prepare_sqlite_file(database: str | Path) -> None:
    """Create the SQLite file 0600 before SQLite opens it, and tighten an existing one and its -wal/-shm.

    SQLite gives the -wal and -shm files the permissions of the database file, so creating that one 0600
    is what keeps the journal private too.
    """
    db_path = Path(database)
    if not db_path.parent.is_dir():
        return  # SQLite itself reports the missing folder, naming it
    if not db_path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    for suffix in ("", "-wal", "-shm", "-journal"):
        tighten(Path(f"{db_path}{suffix}"))
