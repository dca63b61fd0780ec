"""Inventory-retrieval jobs: their parameters and the inventory document (spec 4.5, 4.6).

Pure: no storage. The job runner binds the snapshot, vault and date window into a
`fetch(after, limit)` callable (`MetadataTx.inventory_items`) and hands it to
`write_inventory`, which pages through it and streams the document out in chunks,
so a vault of millions of archives never has its inventory in memory at once.

Document rules (spec 4.6, 9 #17, 9 #18):

- JSON: compact, members in the order the service uses (`VaultARN`, `InventoryDate`,
  `ArchiveList`; each archive `ArchiveId`, `ArchiveDescription`, `CreationDate`,
  `Size`, `SHA256TreeHash`), dates to the second, `ArchiveDescription` "" when none.
  Strings are escaped by `json.dumps` (non-ASCII as `\\uXXXX`), so the document is
  plain ASCII.
- CSV: a header line, then one line per archive. Every line, the last included, ends
  with `\\n` (a POSIX text file; the spec requires no trailing newline, and every
  parser we know accepts one); an empty inventory is the header line alone.
  `ArchiveDescription` is always double-quoted with each `"` written as `\\"` and
  backslashes left alone, exactly as Glacier does (not RFC 4180). No other column is
  ever quoted: ids are URL-safe base64, dates, decimal sizes and hex hashes never
  contain a comma or a quote. A description ending in a backslash therefore ends in
  `\\"` before its closing quote, as on AWS; a reader that knows the columns (only the
  description may hold a comma) still splits such a line unambiguously.

Paging (spec 4.5 [R]): items are ordered by (CreationDate, ArchiveId). The marker is
an opaque token naming the position of the last item written (its creation time to
the microsecond and its id), not a snapshot, so a marker from an older inventory
continues against a newer one by position.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from openglacier.clock import iso_seconds
from openglacier.errors import InvalidParameterValueException, SerializationException
from openglacier.records import InventoryItem, InventoryParams

INVENTORY_CONTENT_TYPES = {"JSON": "application/json", "CSV": "text/csv"}
CSV_HEADER = "ArchiveId,ArchiveDescription,CreationDate,Size,SHA256TreeHash"
DEFAULT_PAGE_SIZE = 1000

Fetch = Callable[[tuple[datetime, str] | None, int], list[InventoryItem]]

# ISO 8601 extended date and time: seconds and fraction optional, offset `Z`,
# `+hh:mm`, `+hhmm` or `+hh` (none: UTC). ASCII digits only.
_DATE_TIME = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})[Tt]"
    r"(?P<h>[0-9]{2}):(?P<mi>[0-9]{2})(?::(?P<s>[0-9]{2})(?:[.,](?P<f>[0-9]{1,9}))?)?"
    r"(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<oh>[0-9]{2})(?::?(?P<om>[0-9]{2}))?)?"
)
_DIGITS = re.compile(r"[0-9]+")
_MARKER = re.compile(r"[A-Za-z0-9_-]{1,1024}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MARKER_VERSION = 1


# --- request parameters -----------------------------------------------------------


def parse_inventory_request(fmt: Any, params: Any) -> InventoryParams:
    """Validate `Format` and `InventoryRetrievalParameters` of an InitiateJob body.

    None means absent, also for members inside the parameters. The result echoes
    the strings the client sent (`Limit` as a string) for DescribeJob (spec 4.5).
    """
    if fmt is None:
        fmt = "JSON"
    if not isinstance(fmt, str) or fmt not in INVENTORY_CONTENT_TYPES:
        raise InvalidParameterValueException(f"Invalid Format: {fmt}. Valid values are: CSV, JSON.")
    if params is None:
        return InventoryParams(format=fmt)
    if not isinstance(params, dict):
        raise SerializationException("Member InventoryRetrievalParameters must be an object.")
    start_date = _string_member(params, "StartDate")
    end_date = _string_member(params, "EndDate")
    marker = _string_member(params, "Marker")
    start = None if start_date is None else parse_date_time("StartDate", start_date)
    end = None if end_date is None else parse_date_time("EndDate", end_date)
    if start is not None and end is not None and start >= end:
        raise InvalidParameterValueException(
            f"The StartDate must be before the EndDate: StartDate {start_date}, EndDate {end_date}."
        )
    limit = _limit(params.get("Limit"))
    if marker is not None:
        decode_marker(marker)
    return InventoryParams(
        format=fmt, start_date=start_date, end_date=end_date, limit=limit, marker=marker
    )


def inventory_window(params: InventoryParams) -> tuple[datetime | None, datetime | None]:
    """(StartDate, EndDate) as aware UTC datetimes: start inclusive, end exclusive."""
    start = None if params.start_date is None else parse_date_time("StartDate", params.start_date)
    end = None if params.end_date is None else parse_date_time("EndDate", params.end_date)
    return start, end


def parse_date_time(member: str, value: str) -> datetime:
    """An ISO 8601 date and time, normalised to aware UTC (no offset: UTC)."""
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        raise _bad_date(member, value)
    parts = match.groupdict()
    fraction = (parts["f"] or "").ljust(6, "0")[:6]  # sub-microsecond digits dropped
    tz = UTC
    if parts["sign"] is not None:
        sign = -1 if parts["sign"] == "-" else 1
        hours, minutes = int(parts["oh"]), int(parts["om"] or 0)
        if hours > 23 or minutes > 59:
            raise _bad_date(member, value)
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        local = datetime(
            int(parts["y"]),
            int(parts["mo"]),
            int(parts["d"]),
            int(parts["h"]),
            int(parts["mi"]),
            int(parts["s"] or 0),
            int(fraction),
            tzinfo=tz,
        )
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _bad_date(member, value) from None


def _bad_date(member: str, value: str) -> InvalidParameterValueException:
    return InvalidParameterValueException(
        f"Invalid {member}: {value}. Use an ISO 8601 date and time, e.g. 2013-03-20T17:03:43Z."
    )


def _string_member(params: dict[str, Any], member: str) -> str | None:
    value = params.get(member)
    if value is not None and not isinstance(value, str):
        raise SerializationException(f"Member {member} must be a string.")
    return value


def _limit(value: Any) -> str | None:
    """`Limit` is a string holding an integer >= 1; a JSON number is accepted too."""
    if value is None:
        return None
    number: int | None = None
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        try:
            number = int(value)
        except ValueError:  # beyond Python's int-parsing digit limit
            number = None
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    if number is None or number < 1:
        shown = value if isinstance(value, str) else json.dumps(value)
        raise InvalidParameterValueException(
            f"Invalid Limit: {shown}. It must be an integer greater than or equal to 1."
        )
    return value if isinstance(value, str) else str(number)


# --- markers ----------------------------------------------------------------------


def encode_marker(created_at: datetime, archive_id: str) -> str:
    """An opaque position: URL-safe base64, unpadded, of a small canonical JSON."""
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    doc = json.dumps({"v": _MARKER_VERSION, "c": micros, "a": archive_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(doc.encode()).decode().rstrip("=")


def decode_marker(marker: str) -> tuple[datetime, str]:
    """The (created_at, archive_id) a marker names; only markers we issued decode."""
    try:
        if not _MARKER.fullmatch(marker):
            raise ValueError
        raw = base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4))
        doc = json.loads(raw)
        micros, archive_id = doc["c"], doc["a"]
        if type(micros) is not int or not isinstance(archive_id, str) or not archive_id:
            raise ValueError
        created_at = _EPOCH + timedelta(microseconds=micros)
        if encode_marker(created_at, archive_id) != marker:
            raise ValueError  # not canonical: not one of ours
    except (ValueError, TypeError, KeyError, OverflowError, binascii.Error):
        raise InvalidParameterValueException(f"Invalid marker: {marker}") from None
    return created_at, archive_id


# --- the document -----------------------------------------------------------------


@dataclass(frozen=True)
class InventoryOutcome:
    size: int  # bytes written (InventorySizeInBytes)
    next_marker: str | None  # set iff Limit cut the listing short and more archives match


def write_inventory(
    fetch: Fetch,
    params: InventoryParams,
    vault_arn: str,
    inventory_date: datetime | None,
    write: Callable[[bytes], None],
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    fallback_date: datetime | None = None,
) -> InventoryOutcome:
    """Stream the inventory document through `write`, one chunk per page.

    `fetch(after, limit)` returns up to `limit` items strictly after `after` in
    (created_at, archive_id) order, already filtered by the date window; it is
    never asked for more than `page_size + 1` items at once, and in total for at
    most `Limit + 1` (the extra one tells whether a marker is due).
    `inventory_date` None means there is no snapshot: the document is empty, fetch
    is not called, and a JSON document shows `fallback_date` as its InventoryDate.
    """
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    if params.format not in INVENTORY_CONTENT_TYPES:
        raise ValueError(f"unknown inventory format {params.format!r}")
    date = inventory_date or fallback_date
    if params.format == "JSON" and date is None:
        raise ValueError("a JSON inventory needs an InventoryDate (give fallback_date)")
    size = 0

    def emit(text: str) -> None:
        nonlocal size
        chunk = text.encode()
        write(chunk)
        size += len(chunk)

    pager = _Pager(
        fetch,
        decode_marker(params.marker) if params.marker else None,
        None if params.limit is None else int(params.limit),
        page_size,
    )
    pages: Iterator[list[InventoryItem]] = iter(pager) if inventory_date is not None else iter(())
    if params.format == "JSON":
        assert date is not None
        emit(
            f'{{"VaultARN":{json.dumps(vault_arn)},'
            f'"InventoryDate":{json.dumps(iso_seconds(date))},"ArchiveList":['
        )
        separator = ""
        for page in pages:
            emit(separator + ",".join(json_item(item) for item in page))
            separator = ","
        emit("]}")
    else:
        emit(CSV_HEADER + "\n")
        for page in pages:
            emit("".join(csv_line(item) + "\n" for item in page))
    last = pager.last
    next_marker = encode_marker(last.created_at, last.archive_id) if pager.cut and last else None
    return InventoryOutcome(size=size, next_marker=next_marker)


class _Pager:
    """Pages of at most `page_size` items, stopping at `limit` items in total.

    The page that reaches the limit asks for one item more than it may write; if
    that item exists the listing was cut short (`cut`) and a marker is due.
    """

    def __init__(
        self, fetch: Fetch, after: tuple[datetime, str] | None, limit: int | None, page_size: int
    ) -> None:
        self.fetch = fetch
        self.after = after
        self.limit = limit
        self.page_size = page_size
        self.cut = False
        self.last: InventoryItem | None = None

    def __iter__(self) -> Iterator[list[InventoryItem]]:
        written = 0
        while True:
            room = self.page_size
            final = self.limit is not None and self.limit - written <= self.page_size
            if self.limit is not None and final:
                room = self.limit - written
            want = room + 1 if final else room
            page = self.fetch(self.after, want)[:want]
            if final:
                self.cut = len(page) > room
                page = page[:room]
            if page:
                self.last = page[-1]
                self.after = (page[-1].created_at, page[-1].archive_id)
                written += len(page)
                yield page
            if final or len(page) < want:
                return


def json_item(item: InventoryItem) -> str:
    return (
        f'{{"ArchiveId":{json.dumps(item.archive_id)},'
        f'"ArchiveDescription":{json.dumps(item.description or "")},'
        f'"CreationDate":{json.dumps(iso_seconds(item.created_at))},'
        f'"Size":{int(item.size)},'
        f'"SHA256TreeHash":{json.dumps(item.tree_hash)}}}'
    )


def csv_line(item: InventoryItem) -> str:
    """One CSV record without its line end (spec 4.6: `"` -> `\\"`, `\\` kept)."""
    description = (item.description or "").replace('"', '\\"')
    return (
        f'{item.archive_id},"{description}",{iso_seconds(item.created_at)},'
        f"{int(item.size)},{item.tree_hash}"
    )
