"""Access keys: access key id -> secret and account (design 4, Authenticator)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, delete, select

from openglacier.domain.models import Credential
from openglacier.storage.metadata.base import TxBase, values_of
from openglacier.storage.metadata.schema import credentials


def _credential(row: Row[Any]) -> Credential:
    return Credential(**row._mapping)


class CredentialOps(TxBase):
    def put_credential(self, credential: Credential) -> None:
        """Insert, or replace the credential with the same access key id."""
        values = values_of(credential)
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
        return None if row is None else _credential(row)

    def list_credentials(self) -> list[Credential]:
        stmt = select(credentials).order_by(credentials.c.access_key_id)
        return [_credential(r) for r in self._rows(stmt)]

    def delete_credential(self, access_key_id: str) -> bool:
        stmt = delete(credentials).where(credentials.c.access_key_id == access_key_id)
        return self._run(stmt) > 0
