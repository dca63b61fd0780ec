"""The deployment's encryption keys, checked before a process uses them.

Every key id that encrypted blobs or sealed secrets here is recorded in the
metadata store with its check value (keyring.Keyring.check_value: an HMAC
of a constant under the key, which proves the key without revealing it).
Every process that opens the stores (serve, worker, the blobs and keys
commands) runs `check_keys` before it creates anything, and is refused with
one line when

- keys are recorded and it has no key file (it would write plaintext and
  could read no encrypted blob),
- its keyring lacks a recorded id (blobs written with that key would be
  unreadable), or
- its key for a recorded id has another check value (a different key under
  the same id: every read would fail its authentication tag).

Once its blob store has opened, `record_keys` records the keyring's ids not
recorded yet (the current one first used from now on), checks again in the
same transaction (two processes starting at once with different keys for a
new id: the first wins, the other is refused), and seals the stored secrets
with the current key.
"""

from __future__ import annotations

import hmac
from datetime import datetime

from openglacier.keyring import Keyring
from openglacier.ports import MetadataStore
from openglacier.storage.blobs.opening import BlobStoreOpenError


class KeyCheckError(BlobStoreOpenError):
    """The process's keys do not fit the recorded ones: one line saying which
    key and what to do (cli/startup.py prints it as is)."""


def key_problem(recorded: dict[str, str], keyring: Keyring | None) -> str | None:
    """Why `keyring` cannot be used with data written under `recorded`, or None."""
    if not recorded:
        return None
    if keyring is None:
        return (
            f"blobs and secrets are encrypted with key id(s) {', '.join(sorted(recorded))}; "
            "start with --encryption-key-file FILE"
        )
    missing = sorted(set(recorded) - set(keyring.keys))
    if missing:
        return (
            f"key id(s) {', '.join(missing)} encrypted data here but {keyring.source} does not "
            "hold them: use the key file the data was written with (restore it from a backup)"
        )
    for key_id, check in sorted(recorded.items()):
        if not hmac.compare_digest(keyring.check_value(key_id), check):
            return (
                f"the key for id {key_id} in {keyring.source} is not the one the data was "
                "written with (its check value differs): use the key file the data was "
                "written with"
            )
    return None


def check_keys(store: MetadataStore, keyring: Keyring | None) -> None:
    """Raise `KeyCheckError` unless `keyring` fits the recorded keys. Reads only:
    a refused process creates nothing."""
    with store.transaction(readonly=True) as tx:
        recorded = tx.recorded_key_checks()
    problem = key_problem(recorded, keyring)
    if problem is not None:
        raise KeyCheckError(problem)


def record_keys(
    store: MetadataStore, keyring: Keyring | None, now: datetime, *, reseal: bool = False
) -> int:
    """Let `store` seal secrets with `keyring`, record its key ids and seal the
    plaintext secrets with its current key (with `reseal`, also those of older
    keys: rotation); how many were sealed."""
    store.keyring = keyring
    if keyring is None:
        return 0
    with store.transaction() as tx:
        for key_id in sorted(keyring.keys):
            tx.record_key_check(key_id, keyring.check_value(key_id), now)
        problem = key_problem(tx.recorded_key_checks(), keyring)
        if problem is not None:
            raise KeyCheckError(problem)  # rolls the recording back
        sealed = tx.seal_secrets(reseal=reseal)
    checkpoint = getattr(store, "checkpoint", None)  # SQLite: old row images out of the file
    if sealed and checkpoint is not None:
        checkpoint()
    return sealed
