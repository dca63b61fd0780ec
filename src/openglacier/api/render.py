"""JSON shapes of spec 2.0, built from domain records."""

from __future__ import annotations

from typing import Any

from openglacier.clock import iso_ms
from openglacier.domain.context import ARCHIVE_OVERHEAD_BYTES, Deps
from openglacier.records import Part, Upload, Vault


def vault_json(deps: Deps, vault: Vault) -> dict[str, Any]:
    return {
        "VaultARN": deps.vault_arn(vault.region, vault.account_id, vault.name),
        "VaultName": vault.name,
        "CreationDate": iso_ms(vault.created_at),
        "LastInventoryDate": iso_ms(vault.inventory_date) if vault.inventory_date else None,
        # As of the last inventory (spec 5), with 32 KiB of overhead per archive (2.0).
        "NumberOfArchives": vault.inventory_count,
        "SizeInBytes": vault.inventory_size + ARCHIVE_OVERHEAD_BYTES * vault.inventory_count,
    }


def upload_json(vault_arn: str, upload: Upload) -> dict[str, Any]:
    return {
        "MultipartUploadId": upload.upload_id,
        "VaultARN": vault_arn,
        "ArchiveDescription": upload.description,
        "PartSizeInBytes": upload.part_size,
        "CreationDate": iso_ms(upload.created_at),
    }


def part_json(part: Part) -> dict[str, Any]:
    return {"RangeInBytes": f"{part.first_byte}-{part.last_byte}", "SHA256TreeHash": part.tree_hash}
