"""Where `openglacier migrate` writes archives.

An OpenGlacier destination with its admin token takes each archive through the
admin import operation (docs/admin-api.md), which keeps the archive's id,
description and creation date. Any other Glacier endpoint only issues ids of
its own: there the archive is uploaded anew (multipart above one part) and the
new id is returned for the mapping file.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from botocore.exceptions import BotoCoreError, ClientError

from openglacier.transfer.migrate_state import Entry
from openglacier.treehash import MIB, combine, tree_hash

CHUNK = MIB


class WriteRefused(Exception):
    """The destination refused this archive (the message says why, in one line)."""


@dataclass(frozen=True)
class Written:
    new_id: str
    existed: bool = False  # the destination already held this very archive


class Destination(Protocol):
    keeps_ids: bool

    def write(self, entry: Entry, path: Path) -> Written: ...


def vault_account(client: Any, vault: str) -> str:
    """Create the vault if needed (idempotent) and return its account id (from its ARN):
    the admin API names accounts explicitly, Glacier calls say '-'."""
    try:
        client.create_vault(vaultName=vault)
        arn = client.describe_vault(vaultName=vault)["VaultARN"]
    except (ClientError, BotoCoreError) as exc:
        raise WriteRefused(f"destination vault {vault}: {exc}") from exc
    return str(arn.split(":")[4])


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


class AdminImport:
    """The destination's admin import operation, streaming the file."""

    keeps_ids = True

    def __init__(self, url: str, token: str, account: str, vault: str) -> None:
        self.base = f"{url.rstrip('/')}/_admin/vaults/{account}/{vault}/archives"
        self.http = httpx.Client(
            headers={"Authorization": f"Bearer {token}"}, timeout=httpx.Timeout(300.0)
        )

    def existing(self) -> dict[str, str]:
        """Archive id -> tree hash of what the destination vault already holds."""
        found: dict[str, str] = {}
        after: str | None = None
        while True:
            params = {"limit": "10000", **({"after": after} if after else {})}
            resp = self.http.get(self.base, params=params)
            _raise_for(resp)
            rows = resp.json()["archives"]
            found.update((r["ArchiveId"], r["SHA256TreeHash"]) for r in rows)
            if len(rows) < 10000:
                return found
            after = rows[-1]["ArchiveId"]

    def write(self, entry: Entry, path: Path) -> Written:
        headers = {
            "Content-Length": str(entry.size),
            "x-amz-sha256-tree-hash": entry.tree_hash,
            "x-openglacier-creation-date": entry.created,
        }
        if entry.description is not None:
            headers["x-openglacier-archive-description"] = quote(entry.description, safe="")
        url = f"{self.base}/{entry.archive_id}/import"
        resp = self.http.post(url, content=_chunks(path), headers=headers)
        _raise_for(resp)
        return Written(entry.archive_id, existed=not resp.json()["imported"])


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code >= 400:
        try:
            body = resp.json()
            detail = f"{body['code']}: {body['message']}"
        except (ValueError, KeyError, TypeError):
            detail = resp.text[:200]
        raise WriteRefused(f"HTTP {resp.status_code} {detail}")


class GlacierUpload:
    """A plain Glacier endpoint: UploadArchive, or a multipart upload above one part."""

    keeps_ids = False

    def __init__(self, client: Any, vault: str, part_size: int, parallel: int) -> None:
        self.client = client
        self.vault = vault
        self.part_size = part_size
        self.parallel = parallel

    def write(self, entry: Entry, path: Path) -> Written:
        try:
            if entry.size <= self.part_size:
                with path.open("rb") as fh:
                    resp = self.client.upload_archive(
                        vaultName=self.vault,
                        archiveDescription=entry.description or "",
                        checksum=entry.tree_hash,
                        body=fh,
                    )
            else:
                resp = self._multipart(entry, path)
        except (ClientError, BotoCoreError) as exc:
            raise WriteRefused(str(exc)) from exc
        return Written(str(resp["archiveId"]))

    def _multipart(self, entry: Entry, path: Path) -> Any:
        upload_id = self.client.initiate_multipart_upload(
            vaultName=self.vault,
            archiveDescription=entry.description or "",
            partSize=str(self.part_size),
        )["uploadId"]
        offsets = range(0, entry.size, self.part_size)

        def send(offset: int) -> str:
            with path.open("rb") as fh:
                fh.seek(offset)
                data = fh.read(self.part_size)
            checksum = tree_hash(data)
            self.client.upload_multipart_part(
                vaultName=self.vault,
                uploadId=upload_id,
                range=f"bytes {offset}-{offset + len(data) - 1}/*",
                checksum=checksum,
                body=data,
            )
            return checksum

        with ThreadPoolExecutor(self.parallel) as pool:
            part_hashes = list(pool.map(send, offsets))
        whole = combine(part_hashes)
        if whole != entry.tree_hash:  # the file was verified; this would be our own bug
            raise WriteRefused(f"parts hash to {whole}, not {entry.tree_hash}")
        return self.client.complete_multipart_upload(
            vaultName=self.vault,
            uploadId=upload_id,
            archiveSize=str(entry.size),
            checksum=whole,
        )
