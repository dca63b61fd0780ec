"""Access keys: the root key pair and further keys, each tied to an account id.

The root credentials come from OPENGLACIER_ACCESS_KEY_ID / _SECRET_ACCESS_KEY /
_ACCOUNT_ID, or are generated on first start and kept in `<data-dir>/credentials.json`
(mode 0600; the secret sealed when an encryption key is configured) so that
restarts keep them. Every key lives in the metadata store,
where `openglacier keys` manages them (design 4: nothing only in memory).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from openglacier.auth import sigv4
from openglacier.auth.canonical import check_query_names_unique
from openglacier.clock import Clock, SystemClock
from openglacier.domain.context import Deps
from openglacier.errors import UnrecognizedClientException
from openglacier.ids import new_access_key_id, new_account_id, new_secret_access_key
from openglacier.keyring import SEALED_PREFIX, Keyring, KeyringError, is_sealed
from openglacier.records import Caller, Credential

CREDENTIALS_FILE = "credentials.json"


@dataclass(frozen=True)
class RootKeys:
    access_key_id: str
    secret_access_key: str
    account_id: str


def load_or_create_root(
    data_dir: Path,
    access_key_id: str,
    secret_access_key: str,
    account_id: str,
    keyring: Keyring | None = None,
) -> RootKeys:
    """Explicit settings win; otherwise reuse the stored pair, or make and store one.
    With a keyring, the stored secret is sealed (as in the metadata store), and a
    plaintext one from before encryption was on is sealed now."""
    path = data_dir / CREDENTIALS_FILE
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
    keys = RootKeys(
        access_key_id or stored.get("access_key_id") or new_access_key_id(),
        secret_access_key or _stored_secret(stored, path, keyring) or new_secret_access_key(),
        account_id or stored.get("account_id") or new_account_id(),
    )
    wanted = keys.__dict__
    if keyring is not None:
        secret = stored.get("secret_access_key", "")
        sealed = (
            secret if _sealed_with(secret, keyring) else keyring.seal(keys.secret_access_key, _ROOT)
        )
        wanted = {**wanted, "secret_access_key": sealed}
    if not access_key_id and stored != wanted:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(wanted, fh, indent=2)
    return keys


_ROOT = "root credentials file"  # the sealed secret's context (keyring.Keyring.seal)


def _stored_secret(stored: dict[str, str], path: Path, keyring: Keyring | None) -> str | None:
    secret = stored.get("secret_access_key")
    if secret is None or not is_sealed(secret):
        return secret
    if keyring is None:
        raise KeyringError(f"the secret in {path} is sealed: start with --encryption-key-file FILE")
    return keyring.unseal(secret, _ROOT)


def _sealed_with(secret: str, keyring: Keyring) -> bool:
    return secret.startswith(f"{SEALED_PREFIX}{keyring.current}:")


class Authenticator:
    """SigV4 verification of every Glacier request against the credential store."""

    def __init__(
        self,
        deps: Deps,
        *,
        region: str,
        max_skew_seconds: int,
        root: RootKeys,
        verify: bool = True,
        wall_clock: Clock | None = None,
        cache_seconds: float = 5.0,
    ) -> None:
        self.deps = deps
        self.region = region
        self.max_skew_seconds = max_skew_seconds
        self.root = root
        self.verify = verify
        # Request timestamps are real-world times even when the service clock is manual.
        self.wall_clock = wall_clock or SystemClock()
        # A deleted key keeps working for at most this long on each server process.
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Credential | None]] = {}

    async def authenticate(self, req: sigv4.RequestToVerify, payload_hash: str) -> Caller:
        if not self.verify:
            return Caller(self.root.access_key_id, self.root.account_id, self.region)
        auth = sigv4.parse_authorization(req)
        credential = await self.lookup(auth.access_key_id)
        if credential is None:
            raise UnrecognizedClientException(
                "The security token included in the request is invalid."
            )
        sigv4.verify_signature(
            req,
            auth,
            credential.secret_access_key,
            payload_hash,
            now=self.wall_clock.now(),
            max_skew=timedelta(seconds=self.max_skew_seconds),
            expected_region=self.region,
        )
        check_query_names_unique(req.raw_query)
        return Caller(credential.access_key_id, credential.account_id, self.region)

    async def lookup(self, access_key_id: str) -> Credential | None:
        """The stored credential, cached per process for `cache_seconds` (the
        console's sign-in and sessions use it too, so both follow one rule)."""
        hit = self._cache.get(access_key_id)
        if hit is not None and time.monotonic() - hit[0] < self.cache_seconds:
            return hit[1]
        found = await self.deps.in_read_tx(lambda tx: tx.get_credential(access_key_id))
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[access_key_id] = (time.monotonic(), found)
        return found


def ensure_root_credential(deps: Deps, root: RootKeys) -> None:
    """Store (or refresh) the root key in the metadata store; blocking, at start-up."""
    with deps.store.transaction() as tx:
        current = tx.get_credential(root.access_key_id)
        wanted = Credential(
            access_key_id=root.access_key_id,
            secret_access_key=root.secret_access_key,
            account_id=root.account_id,
            created_at=current.created_at if current else deps.clock.now(),
            description="root",
            is_root=True,
        )
        if current != wanted:
            tx.put_credential(wanted)
