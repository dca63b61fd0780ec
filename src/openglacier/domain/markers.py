"""Opaque list markers for (creation time, id) keyset pagination (spec 9 #6 [R]).

ListJobs and ListMultipartUploads page in (created_at, id) order; a marker is
the position after the last returned item, so every page makes progress and a
marker stays valid while items are added or removed.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from openglacier.errors import InvalidParameterValueException


def encode_position(created_at: datetime, item_id: str) -> str:
    raw = f"{created_at.isoformat()}|{item_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_position(marker: str) -> tuple[datetime, str]:
    """The position a marker names; a 400 for anything this server did not issue."""
    try:
        raw = base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4)).decode()
        created_text, item_id = raw.split("|", 1)
        created = datetime.fromisoformat(created_text)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        created = None
        item_id = ""
    # Issued markers always carry a UTC offset; a naive time would reach the
    # metadata store and fail there as a server error.
    if created is None or created.utcoffset() is None or not item_id:
        raise InvalidParameterValueException(f"Invalid marker: {marker}")
    return created, item_id
