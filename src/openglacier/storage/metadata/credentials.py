"""Access keys: access key id -> secret and account (design 4, Authenticator).

With an encryption key configured (the store's keyring), secrets are stored
sealed (keyring.py: AES-256-GCM under the current key, bound to the access
key id, so a sealed value copied to another row does not open) and opened
here when read: callers only ever see plaintext secrets. Without one they
are stored as given, and a sealed one is returned as it is stored (never a
working secret).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from sqlalchemy import Row, delete, func, select, update

from openglacier.errors import StorageError
from openglacier.keyring import SEALED_PREFIX, KeyringError, is_sealed
from openglacier.records import Credential
from openglacier.storage.metadata.base import TxBase, translated, values_of
from openglacier.storage.metadata.schema import credentials


class CredentialOps(TxBase):
    def put_credential(self, credential: Credential) -> None:
        """Insert, or replace the credential with the same access key id."""
        values = values_of(credential)
        values["secret_access_key"] = self._sealed(credential)
        stmt = self._insert(credentials).values(values)
        self._run(
            stmt.on_conflict_do_update(
                index_elements=["access_key_id"],
                set_={k: v for k, v in values.items() if k != "access_key_id"},
            )
        )

    def get_credential(self, access_key_id: str) -> Credential | None:
        stmt = select(credentials).where(credentials.c.access_key_id == access_key_id)
        row = self._first(stmt)
        return None if row is None else self._credential(row)

    def list_credentials(self) -> list[Credential]:
        stmt = select(credentials).order_by(credentials.c.access_key_id)
        return [self._credential(r) for r in self._rows(stmt)]

    def delete_credential(self, access_key_id: str) -> bool:
        stmt = delete(credentials).where(credentials.c.access_key_id == access_key_id)
        return self._run(stmt) > 0

    def seal_secrets(self, *, reseal: bool = False) -> int:
        keyring = self._keyring
        if keyring is None:
            raise ValueError("seal_secrets needs the store's keyring")
        # Without `reseal` only plaintext rows: a start must not re-seal secrets
        # of an older key, or in a rolling restart the nodes still on the old
        # key file could no longer check any signature. Rotation re-seals them
        # (`blobs rewrite`), once every node holds the new key.
        done = f"{SEALED_PREFIX}{keyring.current}:" if reseal else SEALED_PREFIX
        c = credentials.c
        # A prefix test without LIKE: key ids may hold "_", a LIKE wildcard.
        prefix = func.substr(c.secret_access_key, 1, len(done))
        stmt = select(c.access_key_id, c.secret_access_key).where(prefix != done)
        # Only the rows that need it: a restart with every secret sealed under
        # the current key reads nothing but this query's empty answer.
        rows = self._rows(stmt.with_for_update())
        with self._zeroing_freed_space(bool(rows)):
            for row in rows:
                plain = self._opened(row.access_key_id, row.secret_access_key)
                sealed = keyring.seal(plain, row.access_key_id)
                self._run(
                    update(credentials)
                    .where(c.access_key_id == row.access_key_id)
                    .values(secret_access_key=sealed)
                )
        return len(rows)

    @contextmanager
    def _zeroing_freed_space(self, needed: bool) -> Iterator[None]:
        """SQLite may leave a rewritten row's old bytes in the page's free space;
        secure_delete zeroes them, so no plaintext secret stays in the file
        (once the WAL is checkpointed: SqlMetadataStore.checkpoint). Many
        builds (Debian's) have it on by default; others do not."""
        if not needed or self._conn.dialect.name != "sqlite":
            yield
            return
        with translated():
            before = int(self._conn.exec_driver_sql("PRAGMA secure_delete").scalar_one())
            self._conn.exec_driver_sql("PRAGMA secure_delete = 1")
        try:
            yield
        finally:
            with translated():
                self._conn.exec_driver_sql(f"PRAGMA secure_delete = {before:d}")

    def _sealed(self, credential: Credential) -> str:
        if self._keyring is None:
            return credential.secret_access_key
        return self._keyring.seal(credential.secret_access_key, credential.access_key_id)

    def _credential(self, row: Row[Any]) -> Credential:
        found = Credential(**row._mapping)
        if self._keyring is None or not is_sealed(found.secret_access_key):
            return found
        plain = self._opened(found.access_key_id, found.secret_access_key)
        return replace(found, secret_access_key=plain)

    def _opened(self, access_key_id: str, stored: str) -> str:
        if self._keyring is None or not is_sealed(stored):
            return stored
        try:
            return self._keyring.unseal(stored, access_key_id)
        except KeyringError as exc:
            # Damage or tampering (a value moved from another row), or a key
            # missing from the keyring: never a working secret. The detail goes
            # to the log; a client sees the generic storage failure.
            raise StorageError(f"the secret of access key {access_key_id}: {exc}") from None
