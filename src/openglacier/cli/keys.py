"""Key management against the metadata store (the server need not be running)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from openglacier.auth.credentials import load_or_create_root
from openglacier.cli.startup import one_line_errors
from openglacier.clock import SystemClock
from openglacier.config import Settings
from openglacier.ids import new_access_key_id, new_secret_access_key
from openglacier.ports import MetadataTx
from openglacier.records import Credential
from openglacier.storage.encryption_keys import check_keys, record_keys
from openglacier.storage.factory import codec_config, open_metadata
from openglacier.storage.private_files import make_private_dir


def create_key(settings: Settings, account_id: str | None, description: str) -> Credential:
    if account_id is not None and not (account_id.isdigit() and len(account_id) == 12):
        raise click.BadParameter("an account id is 12 digits", param_hint="--account-id")
    # The store first: one that cannot be opened leaves no credentials file behind.
    with metadata_tx(settings, sealing=True) as tx:
        if account_id is None:
            make_private_dir(settings.data_dir)
            with one_line_errors(settings):
                account_id = load_or_create_root(
                    settings.data_dir,
                    settings.access_key_id,
                    settings.secret_access_key,
                    settings.account_id,
                    codec_config(settings).keyring,
                ).account_id
        cred = Credential(
            access_key_id=new_access_key_id(),
            secret_access_key=new_secret_access_key(),
            account_id=account_id,
            created_at=SystemClock().now(),
            description=description,
        )
        tx.put_credential(cred)
    return cred


def list_keys(settings: Settings) -> list[Credential]:
    with metadata_tx(settings, readonly=True) as tx:
        return tx.list_credentials()


def delete_key(settings: Settings, access_key_id: str) -> bool:
    with metadata_tx(settings) as tx:
        return tx.delete_credential(access_key_id)


@contextmanager
def metadata_tx(
    settings: Settings, *, readonly: bool = False, sealing: bool = False
) -> Iterator[MetadataTx]:
    """One transaction on the configured metadata store, opened and closed for a
    command. `sealing`: the command stores secrets, so its key file must fit the
    recorded keys (storage/encryption_keys.py), as for a start."""
    with one_line_errors(settings):
        keyring = codec_config(settings).keyring if sealing else None
        store = open_metadata(settings.resolved_metadata_url)
        try:
            if sealing:
                check_keys(store, keyring)
                record_keys(store, keyring, SystemClock().now())
        except BaseException:
            store.close()
            raise
    try:
        with store.transaction(readonly=readonly) as tx:
            yield tx
    finally:
        store.close()
