"""`POST /_admin/vaults/{account}/{vault}/archives/{archiveId}/import` (docs/admin-api.md).

The archive's attributes travel in headers so the body can be the archive's bytes,
streamed to storage exactly as UploadArchive's are.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response

from openglacier.api.protocol import json_response
from openglacier.domain.imports import ArchiveImporter, ImportRequest, check_archive_id
from openglacier.domain.services import Services
from openglacier.domain.validation import check_description, require_tree_hash
from openglacier.errors import InvalidParameterValueException, MissingParameterValueException
from openglacier.records import Caller

DESCRIPTION_HEADER = "x-openglacier-archive-description"
CREATION_DATE_HEADER = "x-openglacier-creation-date"


def parse_creation_date(value: str | None) -> datetime:
    if not value:
        raise MissingParameterValueException(f"Required parameter missing: {CREATION_DATE_HEADER}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidParameterValueException(
            f"Invalid {CREATION_DATE_HEADER}: {value} (use ISO 8601 with a zone, "
            "e.g. 2012-03-20T17:03:43Z)"
        )
    return parsed.astimezone(UTC)


def parse_description(value: str | None) -> str | None:
    """Percent-encoded, because HTTP strips the spaces a description may end with."""
    if value is None:
        return None
    try:
        text = unquote(value, errors="strict")
    except UnicodeDecodeError:
        text = "\x00"  # refused below
    return check_description(text)


def parse_size(value: str | None) -> int:
    if value is None:
        raise MissingParameterValueException("Required parameter missing: Content-Length")
    if not (value.isascii() and value.isdigit()):
        raise InvalidParameterValueException(f"Invalid Content-Length: {value}")
    return int(value)


async def import_archive(
    services: Services, caller: Caller, vault: str, archive_id: str, request: Request
) -> Response:
    headers = request.headers
    req = ImportRequest(
        archive_id=check_archive_id(archive_id),
        description=parse_description(headers.get(DESCRIPTION_HEADER)),
        created_at=parse_creation_date(headers.get(CREATION_DATE_HEADER)),
        tree_hash=require_tree_hash(headers.get("x-amz-sha256-tree-hash")),
        size=parse_size(headers.get("content-length")),
    )
    result = await ArchiveImporter(services.deps).run(caller, vault, req, request.stream())
    answer = {
        "imported": result.imported,
        "ArchiveId": result.archive_id,
        "Size": result.size,
        "SHA256TreeHash": result.tree_hash,
        "Location": result.location,
    }
    if not result.imported:
        answer["reason"] = "exists"  # same id, same tree hash: already imported
    return json_response(answer, status=201 if result.imported else 200)
