"""InitiateJob request bodies (spec 2.26): unwrapping, member types, per-type rules.

Pure: no storage. Checks that need the archive (existence, vault, byte range)
happen in `domain/jobs/service.py` once the archive is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from openglacier.domain.inventory_doc import parse_inventory_request
from openglacier.domain.validation import MAX_DESCRIPTION
from openglacier.errors import (
    InvalidParameterValueException,
    MissingParameterValueException,
    SerializationException,
)
from openglacier.records import InventoryParams, JobAction

TYPES = {
    "archive-retrieval": JobAction.ARCHIVE,
    "inventory-retrieval": JobAction.INVENTORY,
    "select": JobAction.SELECT,
}
TIERS = ("Expedited", "Standard", "Bulk")
DEFAULT_TIER = "Standard"


@dataclass(frozen=True)
class JobRequest:
    action: JobAction
    description: str | None
    sns_topic: str | None
    tier: str | None  # None for inventory jobs (spec 9 #10)
    archive_id: str | None = None
    byte_range: str | None = None
    inventory: InventoryParams | None = None
    select_parameters: Any = None
    output_location: Any = None


def unwrap(body: dict[str, Any]) -> dict[str, Any]:
    """Spec 2.26 [R]: accept `{"jobParameters": {...}}` as well as the members.

    Members whose value is null count as absent (spec 1.7), at either level.
    """
    if len(body) == 1:
        ((key, value),) = body.items()
        if key.lower() == "jobparameters" and isinstance(value, dict):
            return {k: v for k, v in value.items() if v is not None}
    return body


def _string(body: dict[str, Any], member: str) -> str | None:
    value = body.get(member)
    if value is not None and not isinstance(value, str):
        raise SerializationException(f"Member {member} must be a string.")
    return value


def _check_description(value: str | None) -> str | None:
    if value is not None and (
        len(value) > MAX_DESCRIPTION or any(not 0x20 <= ord(c) <= 0x7E for c in value)
    ):
        raise InvalidParameterValueException(
            "Invalid job description: it must be at most 1024 characters, "
            "each a printable ASCII character (0x20-0x7E)."
        )
    return value


def _check_tier(value: str | None) -> str:
    if value is None:
        return DEFAULT_TIER
    if value not in TIERS:
        raise InvalidParameterValueException(
            f"Invalid tier: {value}. Valid values are: {', '.join(TIERS)}."
        )
    return value


def _check_topic(value: str | None) -> str | None:
    # Glacier neither creates nor checks the topic (spec 2.26); only its length.
    if value is not None and len(value) > MAX_DESCRIPTION:
        raise InvalidParameterValueException("Invalid SNSTopic: too long.")
    return value


def parse_job_request(raw: dict[str, Any]) -> JobRequest:
    body = unwrap(raw)
    kind = _string(body, "Type")
    if kind is None:
        raise MissingParameterValueException("Required parameter missing: Type")
    action = TYPES.get(kind)
    if action is None:
        raise InvalidParameterValueException(
            f"Invalid job type: {kind}. Valid values are: {', '.join(TYPES)}."
        )
    common = JobRequest(
        action=action,
        description=_check_description(_string(body, "Description")),
        sns_topic=_check_topic(_string(body, "SNSTopic")),
        tier=None,
    )
    archive_id = _string(body, "ArchiveId")
    byte_range = _string(body, "RetrievalByteRange")
    if action is JobAction.INVENTORY:
        if archive_id is not None:
            raise InvalidParameterValueException(
                "ArchiveId is not allowed for inventory-retrieval jobs."
            )
        if byte_range is not None:
            raise InvalidParameterValueException(
                "RetrievalByteRange is not allowed for inventory-retrieval jobs."
            )
        inventory = parse_inventory_request(
            _string(body, "Format"), body.get("InventoryRetrievalParameters")
        )
        return replace(common, inventory=inventory)
    if archive_id is None:
        raise MissingParameterValueException("Required parameter missing: ArchiveId")
    tier = _check_tier(_string(body, "Tier"))
    if action is JobAction.SELECT:
        if byte_range is not None:
            raise InvalidParameterValueException(
                "RetrievalByteRange is not allowed for select jobs."
            )
        return replace(
            common,
            tier=tier,
            archive_id=archive_id,
            select_parameters=body.get("SelectParameters"),
            output_location=body.get("OutputLocation"),
        )
    return replace(common, tier=tier, archive_id=archive_id, byte_range=byte_range)
