"""The recorded encryption key ids and their check values
(storage/encryption_keys.py decides what a start may do with them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from openglacier.storage.metadata.base import TxBase
from openglacier.storage.metadata.schema import encryption_keys


class EncryptionKeyOps(TxBase):
    def recorded_key_checks(self) -> dict[str, str]:
        c = encryption_keys.c
        rows = self._rows(select(c.key_id, c.check_value).order_by(c.key_id))
        return {str(r.key_id): str(r.check_value) for r in rows}

    def record_key_check(self, key_id: str, check_value: str, now: datetime) -> str:
        values = {"key_id": key_id, "check_value": check_value, "first_used_at": now}
        self._run(self._insert(encryption_keys).values(values).on_conflict_do_nothing())
        stmt = select(encryption_keys.c.check_value).where(encryption_keys.c.key_id == key_id)
        return str(self._scalar(stmt))
