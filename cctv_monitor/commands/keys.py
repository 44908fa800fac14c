"""``rotate-credential-key``: re-encrypt every stored site credential under a new key."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

#: Exit status for a refused rotation (nothing was changed).
EXIT_REFUSED = 2


def register(group: AppGroup) -> None:
    """Add ``rotate-credential-key`` to ``group``."""

    @group.command("rotate-credential-key")
    @click.option("--new-key-stdin", is_flag=True,
                  help="Read the new Fernet key from standard input (required when CCTV_CREDENTIAL_KEY holds the "
                       "key; otherwise a key is generated into the instance folder).")
    def rotate_credential_key(new_key_stdin: bool) -> None:
        """Re-encrypt every site's camera credentials under a new key, in one transaction.

        With the key in <instance>/credential.key the file is replaced (0600, atomically) after the commit.
        With the key in CCTV_CREDENTIAL_KEY, generate one (python -c 'from cryptography.fernet import Fernet;
        print(Fernet.generate_key().decode())'), pipe it in with --new-key-stdin, then set the variable to it.
        Stop `serve` and `worker` first: a scan that reads a credential in between would fail.
        """
        from flask import current_app

        from cctv_monitor import audit
        from cctv_monitor.crypto import CredentialKeyError
        from cctv_monitor.crypto import rotate_credential_key as rotate
        from cctv_monitor.db import get_db

        new_key = sys.stdin.readline().strip().encode("ascii", "replace") if new_key_stdin else None
        app = current_app._get_current_object()
        with get_db(app).sessionmaker() as session:
            try:
                count = rotate(app, session, new_key, actor=audit.cli_actor())
            except CredentialKeyError as exc:
                click.echo(f"Error: {exc}", err=True)
                raise SystemExit(EXIT_REFUSED) from None
        click.echo(f"Re-encrypted the credentials of {count} site(s) under the new key.")
