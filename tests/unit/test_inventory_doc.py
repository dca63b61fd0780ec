"""Inventory-retrieval parameters, markers and the streamed document (spec 4.5, 4.6).

The strict JSON and CSV readers live in tests/support/inventory.py (the
contract suite and the functional tests use them too).
"""

from __future__ import annotations

import base64
import json
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openglacier.clock import iso_seconds
from openglacier.domain.inventory_doc import (
    CSV_HEADER,
    INVENTORY_CONTENT_TYPES,
    decode_marker,
    encode_marker,
    inventory_window,
    parse_inventory_request,
    write_inventory,
)
from openglacier.errors import (
    GlacierError,
    InvalidParameterValueException,
    SerializationException,
)
from openglacier.records import InventoryItem, InventoryParams
from support.inventory import (
    Position,
    parse_csv_inventory,
    parse_inventory,
    parse_json_inventory,
)

ARN = "arn:aws:glacier:us-west-2:012345678901:vaults/my-vault"
T0 = datetime(2015, 4, 6, 22, 24, 34, 123456, tzinfo=UTC)
HASH = "9628195fcdbcbbe76cdde932d4646fa7de5f219fb39823836d81f0cc0e18aa67"


def expected_row(item: InventoryItem) -> tuple[str, str, str, int, str]:
    return (
        item.archive_id,
        item.description or "",
        iso_seconds(item.created_at),
        item.size,
        item.tree_hash,
    )


# --- in-memory fetch -----------------------------------------------------------------


def position(item: InventoryItem) -> Position:
    return item.created_at, item.archive_id


@dataclass
class ListFetch:
    """What `MetadataTx.inventory_items` does, over a list; records every request."""

    items: list[InventoryItem]
    asks: list[tuple[Position | None, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.items = sorted(self.items, key=position)
        self.keys = [position(item) for item in self.items]

    def __call__(self, after: Position | None, limit: int) -> list[InventoryItem]:
        self.asks.append((after, limit))
        start = 0 if after is None else bisect_right(self.keys, after)
        return self.items[start : start + limit]


def item(index: int, *, description: str | None = "desc", created: datetime = T0) -> InventoryItem:
    return InventoryItem(f"archive-{index:06d}", description, created, index * 10, HASH)


class Sink:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def __call__(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def render(
    items: list[InventoryItem], params: InventoryParams, **kwargs: Any
) -> tuple[bytes, str | None, ListFetch]:
    fetch = ListFetch(items)
    sink = Sink()
    outcome = write_inventory(fetch, params, ARN, kwargs.pop("date", T0), sink, **kwargs)
    assert outcome.size == len(sink.data)
    return sink.data, outcome.next_marker, fetch


# --- parse_inventory_request: errors -------------------------------------------------

_DATE_HINT = ". Use an ISO 8601 date and time, e.g. 2013-03-20T17:03:43Z."
_LIMIT_HINT = ". It must be an integer greater than or equal to 1."
_BAD_DATES = [
    "",
    "yesterday",
    "2013-03-20",  # a date without a time
    "2013-03-20 17:03:43Z",
    "2013-03-20T17:03:43ZZ",
    "2013-03-20T17:03:43Z junk",
    " 2013-03-20T17:03:43Z",
    "2013-02-30T00:00:00Z",
    "2013-13-01T00:00:00Z",
    "2013-03-20T24:00:00Z",
    "2013-03-20T17:60:00Z",
    "2013-03-20T17:03:60Z",  # no leap seconds
    "2013-03-20T17:03:43.Z",
    "2013-03-20T17:03:43.1234567890Z",
    "2013-03-20T17:03:43+24:00",
    "2013-03-20T17:03:43+05:60",
    "2013-03-20T17:03:43+5",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",  # before datetime.min in UTC
    "9999-12-31T23:59:59-01:00",  # after datetime.max in UTC
    "\u0662\u0660\u0661\u0663-03-20T17:03:43Z",  # non-ASCII digits
    "20130320T170343Z",  # basic format
    "1363799023",
]
_BAD_LIMITS: list[tuple[Any, str]] = [
    ("0", "0"),
    ("-1", "-1"),
    ("+5", "+5"),
    (" 5", " 5"),
    ("5 ", "5 "),
    ("", ""),
    ("abc", "abc"),
    ("5.0", "5.0"),
    ("1e3", "1e3"),
    ("\u0665", "\u0665"),  # non-ASCII digit
    ("9" * 5000, "9" * 5000),  # beyond Python's int-parsing limit
    (0, "0"),
    (-3, "-3"),
    (2.5, "2.5"),
    (0.0, "0.0"),
    (True, "true"),
    ([], "[]"),
    ({}, "{}"),
]


def _raises(exc: type[GlacierError], message: str, fmt: Any, params: Any) -> None:
    with pytest.raises(exc) as caught:
        parse_inventory_request(fmt, params)
    assert type(caught.value) is exc
    assert caught.value.message == message


@pytest.mark.parametrize("fmt", ["XML", "json", "csv", "", " JSON", 5, ["JSON"], {"a": 1}])
def test_format_must_be_csv_or_json(fmt: Any) -> None:
    message = f"Invalid Format: {fmt}. Valid values are: CSV, JSON."
    _raises(InvalidParameterValueException, message, fmt, None)


@pytest.mark.parametrize("params", ["StartDate=x", 5, ["Limit"], True, 1.5])
def test_parameters_must_be_an_object(params: Any) -> None:
    message = "Member InventoryRetrievalParameters must be an object."
    _raises(SerializationException, message, "JSON", params)


@pytest.mark.parametrize("member", ["StartDate", "EndDate", "Marker"])
@pytest.mark.parametrize("value", [5, 1.5, True, ["2013-03-20T17:03:43Z"], {}])
def test_string_members_must_be_strings(member: str, value: Any) -> None:
    message = f"Member {member} must be a string."
    _raises(SerializationException, message, None, {member: value})


@pytest.mark.parametrize("member", ["StartDate", "EndDate"])
@pytest.mark.parametrize("value", _BAD_DATES)
def test_dates_must_be_iso8601_date_times(member: str, value: str) -> None:
    message = f"Invalid {member}: {value}{_DATE_HINT}"
    _raises(InvalidParameterValueException, message, "CSV", {member: value})


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2013-03-20T17:03:43Z", "2013-03-20T17:03:43Z"),
        ("2013-03-20T17:03:44Z", "2013-03-20T17:03:43Z"),
        ("2013-03-20T18:03:43+01:00", "2013-03-20T17:03:43Z"),  # the same instant
        ("2013-03-20T17:03:43.000001Z", "2013-03-20T17:03:43Z"),
    ],
)
def test_start_date_must_be_before_end_date(start: str, end: str) -> None:
    message = f"The StartDate must be before the EndDate: StartDate {start}, EndDate {end}."
    params = {"StartDate": start, "EndDate": end}
    _raises(InvalidParameterValueException, message, None, params)


@pytest.mark.parametrize(("value", "shown"), _BAD_LIMITS)
def test_limit_must_be_an_integer_of_at_least_one(value: Any, shown: str) -> None:
    message = f"Invalid Limit: {shown}{_LIMIT_HINT}"
    _raises(InvalidParameterValueException, message, None, {"Limit": value})


def test_the_first_bad_member_is_reported_dates_first() -> None:
    params = {"StartDate": "nope", "Limit": "0", "Marker": "x"}
    _raises(InvalidParameterValueException, f"Invalid StartDate: nope{_DATE_HINT}", None, params)


# --- parse_inventory_request: accepted ------------------------------------------------


def test_absent_parameters_give_json_and_nothing_else() -> None:
    assert parse_inventory_request(None, None) == InventoryParams(format="JSON")
    assert parse_inventory_request("CSV", None) == InventoryParams(format="CSV")
    assert parse_inventory_request("JSON", {}) == InventoryParams(format="JSON")
    nulls = {"StartDate": None, "EndDate": None, "Limit": None, "Marker": None}
    assert parse_inventory_request("CSV", nulls) == InventoryParams(format="CSV")


def test_members_are_echoed_as_sent() -> None:
    marker = encode_marker(T0, "some-archive")
    params = {
        "StartDate": "2013-03-20T17:03:43Z",
        "EndDate": "2013-03-21T00:00:00.5+02:00",
        "Limit": "0010",
        "Marker": marker,
        "Unknown": "ignored",
    }
    assert parse_inventory_request("CSV", params) == InventoryParams(
        format="CSV",
        start_date="2013-03-20T17:03:43Z",
        end_date="2013-03-21T00:00:00.5+02:00",
        limit="0010",
        marker=marker,
    )


@pytest.mark.parametrize(
    ("value", "echo"),
    [("1", "1"), ("10000", "10000"), (7, "7"), (7.0, "7"), ("9" * 40, "9" * 40)],
)
def test_limit_accepts_strings_and_numbers(value: Any, echo: str) -> None:
    assert parse_inventory_request(None, {"Limit": value}).limit == echo


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2013-03-20T17:03:43Z", datetime(2013, 3, 20, 17, 3, 43, tzinfo=UTC)),
        ("2013-03-20t17:03:43z", datetime(2013, 3, 20, 17, 3, 43, tzinfo=UTC)),
        ("2013-03-20T17:03:43", datetime(2013, 3, 20, 17, 3, 43, tzinfo=UTC)),
        ("2013-03-20T17:03Z", datetime(2013, 3, 20, 17, 3, tzinfo=UTC)),
        ("2013-03-20T17:03:43.5Z", datetime(2013, 3, 20, 17, 3, 43, 500000, tzinfo=UTC)),
        ("2013-03-20T17:03:43,25Z", datetime(2013, 3, 20, 17, 3, 43, 250000, tzinfo=UTC)),
        ("2013-03-20T17:03:43.123Z", datetime(2013, 3, 20, 17, 3, 43, 123000, tzinfo=UTC)),
        (
            "2013-03-20T17:03:43.123456789Z",  # beyond microseconds: truncated
            datetime(2013, 3, 20, 17, 3, 43, 123456, tzinfo=UTC),
        ),
        ("2013-03-20T17:03:43+00:00", datetime(2013, 3, 20, 17, 3, 43, tzinfo=UTC)),
        ("2013-03-20T17:03:43-00:00", datetime(2013, 3, 20, 17, 3, 43, tzinfo=UTC)),
        ("2013-03-20T17:03:43+02:00", datetime(2013, 3, 20, 15, 3, 43, tzinfo=UTC)),
        ("2013-03-20T17:03:43+0530", datetime(2013, 3, 20, 11, 33, 43, tzinfo=UTC)),
        ("2013-03-20T17:03:43-08", datetime(2013, 3, 21, 1, 3, 43, tzinfo=UTC)),
        ("2012-02-29T00:00:00Z", datetime(2012, 2, 29, tzinfo=UTC)),
    ],
)
def test_date_forms_accepted(text: str, instant: datetime) -> None:
    params = parse_inventory_request(None, {"StartDate": text, "EndDate": "9999-01-01T00:00:00Z"})
    assert params.start_date == text
    start, end = inventory_window(params)
    assert start == instant
    assert start is not None
    assert start.utcoffset() == timedelta(0)
    assert end == datetime(9999, 1, 1, tzinfo=UTC)


def test_inventory_window_with_one_bound_or_none() -> None:
    assert inventory_window(InventoryParams()) == (None, None)
    only_end = parse_inventory_request(None, {"EndDate": "2013-03-20T17:03:43Z"})
    assert inventory_window(only_end) == (None, datetime(2013, 3, 20, 17, 3, 43, tzinfo=UTC))
    only_start = parse_inventory_request(None, {"StartDate": "2013-03-20T17:03:43Z"})
    assert inventory_window(only_start) == (datetime(2013, 3, 20, 17, 3, 43, tzinfo=UTC), None)


def test_content_types() -> None:
    assert INVENTORY_CONTENT_TYPES == {"JSON": "application/json", "CSV": "text/csv"}


# --- markers -------------------------------------------------------------------------

_ARCHIVE_IDS = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
    min_size=1,
    max_size=138,
)


@given(
    created=st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
    ),
    archive_id=_ARCHIVE_IDS | st.text(min_size=1, max_size=50),
)
@settings(max_examples=200)
def test_marker_round_trip(created: datetime, archive_id: str) -> None:
    marker = encode_marker(created, archive_id)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", marker)  # URL-safe, no padding
    back, back_id = decode_marker(marker)
    assert (back, back_id) == (created, archive_id)
    assert back.utcoffset() == timedelta(0)
    assert parse_inventory_request(None, {"Marker": marker}).marker == marker


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _garbage_markers() -> list[str]:
    good = encode_marker(T0, "archive-1")
    flipped = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
    return [
        "",
        "x",
        "abc",
        "not a marker!",
        good + "=",  # padded
        good + "==",
        good[:-1],
        good + "A",
        flipped,
        " " + good,
        good.replace("-", "+").replace("_", "/") + "+/",  # standard alphabet
        "A" * 2000,
        _b64(b"\xff\xfe\xfd"),
        _b64(b"plain text"),
        _b64(b"[1, 2]"),
        _b64(b'"string"'),
        _b64(b"123"),
        _b64(b"{}"),
        _b64(b'{"v":1,"c":1}'),
        _b64(b'{"v":1,"a":"x"}'),
        _b64(b'{"v":1,"c":1.5,"a":"x"}'),
        _b64(b'{"v":1,"c":true,"a":"x"}'),
        _b64(b'{"v":1,"c":"1","a":"x"}'),
        _b64(b'{"v":1,"c":1,"a":""}'),
        _b64(b'{"v":1,"c":1,"a":5}'),
        _b64(b'{"v":1,"c":1,"a":null}'),
        _b64(b'{"v":2,"c":1,"a":"x"}'),  # unknown version
        _b64(b'{"c":1,"a":"x","v":1}'),  # not canonical
        _b64(b'{"v": 1, "c": 1, "a": "x"}'),
        _b64(b'{"v":1,"c":1e400,"a":"x"}'),
        _b64(b'{"v":1,"c":' + str(10**30).encode() + b',"a":"x"}'),  # out of range
        _b64(b'{"v":1,"c":-' + str(10**30).encode() + b',"a":"x"}'),
        _b64(b"[" * 700 + b"]" * 700),
        _b64(b'{"v":1,"c":NaN,"a":"x"}'),
    ]


@pytest.mark.parametrize("marker", _garbage_markers())
def test_garbage_markers_are_invalid(marker: str) -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        decode_marker(marker)
    assert caught.value.message == f"Invalid marker: {marker}"
    _raises(InvalidParameterValueException, f"Invalid marker: {marker}", None, {"Marker": marker})


def test_marker_keeps_microseconds() -> None:
    created = datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    assert decode_marker(encode_marker(created, "a")) == (created, "a")
    assert encode_marker(created, "a") != encode_marker(created.replace(microsecond=0), "a")


# --- the document: exact forms ------------------------------------------------------


def test_json_document_exact() -> None:
    items = [
        InventoryItem(
            "kKB7ymWJVpPSwhGP6ycSOAekp9ZYe_--zM_mw6k76ZFGEIWQX-ybtRDvc2VkPSDtfKmQrj0IRQLSGsNuDp-AJVlu2ccmDSyDUmZwKbwbpAdGATGDiB3hHO0bjbGehXTcApVud_wyDw",
            "multipart upload test",
            T0,
            3145728,
            HASH,
        ),
        InventoryItem("b-2", None, T0 + timedelta(seconds=1), 0, "00" * 32),
    ]
    data, marker, _ = render(
        items, InventoryParams(), date=datetime(2015, 4, 7, 0, 26, 18, 999999, tzinfo=UTC)
    )
    assert marker is None
    assert data == (
        b'{"VaultARN":"arn:aws:glacier:us-west-2:012345678901:vaults/my-vault",'
        b'"InventoryDate":"2015-04-07T00:26:18Z","ArchiveList":['
        b'{"ArchiveId":"kKB7ymWJVpPSwhGP6ycSOAekp9ZYe_--zM_mw6k76ZFGEIWQX-ybtRDvc2VkPSDtfKmQrj0IRQLSGsNuDp-AJVlu2ccmDSyDUmZwKbwbpAdGATGDiB3hHO0bjbGehXTcApVud_wyDw",'
        b'"ArchiveDescription":"multipart upload test","CreationDate":"2015-04-06T22:24:34Z",'
        b'"Size":3145728,"SHA256TreeHash":"' + HASH.encode() + b'"},'
        b'{"ArchiveId":"b-2","ArchiveDescription":"","CreationDate":"2015-04-06T22:24:35Z",'
        b'"Size":0,"SHA256TreeHash":"' + b"00" * 32 + b'"}]}'
    )


def test_empty_documents() -> None:
    data, marker, _ = render([], InventoryParams(format="JSON"))
    assert data == (
        b'{"VaultARN":"' + ARN.encode() + b'","InventoryDate":"2015-04-06T22:24:34Z",'
        b'"ArchiveList":[]}'
    )
    assert marker is None
    data, marker, _ = render([], InventoryParams(format="CSV", limit="3"))
    assert data == b"ArchiveId,ArchiveDescription,CreationDate,Size,SHA256TreeHash\n"
    assert marker is None
    assert parse_csv_inventory(data).rows == []


def test_csv_reproduces_the_guides_examples() -> None:
    # Spec 4.6 [G]: the two quoting examples, byte for byte.
    items = [
        item(1, description='my archive description,1"2'),
        item(2, description='my archive description,1\\"2'),
    ]
    data, _, _ = render(items, InventoryParams(format="CSV"))
    assert data == (
        b"ArchiveId,ArchiveDescription,CreationDate,Size,SHA256TreeHash\n"
        b'archive-000001,"my archive description,1\\"2",2015-04-06T22:24:34Z,10,'
        + HASH.encode()
        + b"\n"
        b'archive-000002,"my archive description,1\\\\"2",2015-04-06T22:24:34Z,20,'
        + HASH.encode()
        + b"\n"
    )
    assert [row[1] for row in parse_csv_inventory(data).rows] == [
        'my archive description,1"2',
        'my archive description,1\\"2',
    ]


_TRICKY = [
    "",
    None,
    "plain",
    "a,b,,c",
    '"',
    '""',
    '"quoted"',
    "\\",
    "\\\\",
    "ends with backslash\\",
    'a\\",b',
    '\\",2015-04-06T22:24:34Z,1,' + HASH,
    "back\\slash",
    "caf\u00e9 \u65e5\u672c \U0001f600",
    "line\nbreak",
    "tab\tand\rcr",
    " leading and trailing ",
    '{"json": [1, 2]}',
]


@pytest.mark.parametrize("fmt", ["JSON", "CSV"])
def test_tricky_descriptions_round_trip(fmt: str) -> None:
    items = [item(i, description=d) for i, d in enumerate(_TRICKY)]
    data, _, _ = render(items, InventoryParams(format=fmt))
    assert parse_inventory(fmt, data).rows == [expected_row(i) for i in items]
    if fmt == "JSON":
        assert data.isascii()  # non-ASCII is \u-escaped


def test_dates_are_whole_seconds_in_utc() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    created = datetime(2015, 4, 7, 5, 56, 18, 999999, tzinfo=india)
    data, _, _ = render([item(1, created=created)], InventoryParams(), date=created)
    parsed = parse_json_inventory(data)
    assert parsed.inventory_date == "2015-04-07T00:26:18Z"
    assert parsed.rows[0][2] == "2015-04-07T00:26:18Z"


def test_no_snapshot_gives_an_empty_inventory_without_fetching() -> None:
    fetch = ListFetch([item(1)])
    sink = Sink()
    outcome = write_inventory(fetch, InventoryParams(format="CSV"), ARN, None, sink)
    assert (sink.data, outcome.next_marker, fetch.asks) == (CSV_HEADER.encode() + b"\n", None, [])
    sink = Sink()
    fallback = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    write_inventory(fetch, InventoryParams(), ARN, None, sink, fallback_date=fallback)
    parsed = parse_json_inventory(sink.data)
    assert (parsed.inventory_date, parsed.rows, fetch.asks) == ("2020-01-02T03:04:05Z", [], [])
    with pytest.raises(ValueError, match="InventoryDate"):
        write_inventory(fetch, InventoryParams(), ARN, None, Sink())


def test_bad_page_size_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="page_size"):
        write_inventory(ListFetch([]), InventoryParams(), ARN, T0, Sink(), page_size=0)


# --- limits and markers ---------------------------------------------------------------


def test_limit_equal_to_the_match_count_gives_no_marker() -> None:
    items = [item(i) for i in range(5)]
    data, marker, fetch = render(items, InventoryParams(format="CSV", limit="5"))
    assert len(parse_csv_inventory(data).rows) == 5
    assert marker is None
    assert sum(limit for _, limit in fetch.asks) == 6  # Limit + 1, no more


def test_limit_below_the_match_count_gives_the_last_written_position() -> None:
    items = [item(i) for i in range(5)]
    data, marker, fetch = render(items, InventoryParams(limit="3"), page_size=2)
    assert [row[0] for row in parse_json_inventory(data).rows] == [i.archive_id for i in items[:3]]
    assert marker == encode_marker(T0, items[2].archive_id)
    assert [limit for _, limit in fetch.asks] == [2, 2]  # a page, then 1 + 1 probe
    data, marker, fetch = render(items, InventoryParams(limit="3", marker=marker), page_size=2)
    assert fetch.asks[0][0] == (T0, items[2].archive_id)
    assert [row[0] for row in parse_json_inventory(data).rows] == [i.archive_id for i in items[3:]]
    assert marker is None


def test_marker_past_the_end_gives_an_empty_list() -> None:
    items = [item(i) for i in range(3)]
    after_all = encode_marker(T0 + timedelta(days=1), "z")
    data, marker, _ = render(items, InventoryParams(format="CSV", marker=after_all))
    assert (parse_csv_inventory(data).rows, marker) == ([], None)


def test_no_limit_never_gives_a_marker() -> None:
    items = [item(i) for i in range(10)]
    data, marker, fetch = render(items, InventoryParams(), page_size=3)
    assert len(parse_json_inventory(data).rows) == 10
    assert marker is None
    assert [limit for _, limit in fetch.asks] == [3, 3, 3, 3]


def test_fetch_returning_too_much_is_clipped() -> None:
    items = [item(i) for i in range(10)]

    def greedy(after: Position | None, limit: int) -> list[InventoryItem]:
        return items  # ignores its arguments

    sink = Sink()
    outcome = write_inventory(greedy, InventoryParams(limit="4"), ARN, T0, sink, page_size=100)
    assert len(parse_json_inventory(sink.data).rows) == 4
    assert outcome.next_marker == encode_marker(T0, items[3].archive_id)


# --- properties ----------------------------------------------------------------------

_DESCRIPTIONS = st.none() | st.text(max_size=12) | st.text(alphabet='a,"\\ \n', max_size=8)
_TIMES = st.sampled_from([T0, T0 + timedelta(microseconds=1), T0 + timedelta(seconds=1)]) | (
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )
)


@st.composite
def inventories(draw: st.DrawFn) -> list[InventoryItem]:
    ids = draw(st.lists(_ARCHIVE_IDS, max_size=25, unique=True))
    return [
        InventoryItem(
            archive_id,
            draw(_DESCRIPTIONS),
            draw(_TIMES),
            draw(st.integers(min_value=0, max_value=2**63 - 1)),
            draw(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)),
        )
        for archive_id in ids
    ]


def reference(fmt: str, items: list[InventoryItem], date: datetime) -> bytes:
    """The whole document built in one go, the obvious way."""
    if fmt == "JSON":
        doc = {
            "VaultARN": ARN,
            "InventoryDate": iso_seconds(date),
            "ArchiveList": [
                {
                    "ArchiveId": i.archive_id,
                    "ArchiveDescription": i.description or "",
                    "CreationDate": iso_seconds(i.created_at),
                    "Size": i.size,
                    "SHA256TreeHash": i.tree_hash,
                }
                for i in items
            ],
        }
        return json.dumps(doc, separators=(",", ":")).encode()
    lines = [CSV_HEADER] + [
        ",".join(
            [
                i.archive_id,
                '"' + (i.description or "").replace('"', '\\"') + '"',
                iso_seconds(i.created_at),
                str(i.size),
                i.tree_hash,
            ]
        )
        for i in items
    ]
    return "".join(line + "\n" for line in lines).encode()


@given(
    items=inventories(),
    fmt=st.sampled_from(["JSON", "CSV"]),
    limit=st.none() | st.integers(min_value=1, max_value=30),
    page_size=st.integers(min_value=1, max_value=6),
)
@settings(max_examples=150, deadline=None)
def test_paging_with_markers_returns_each_item_once_in_order(
    items: list[InventoryItem], fmt: str, limit: int | None, page_size: int
) -> None:
    ordered = sorted(items, key=position)
    seen: list[InventoryItem] = []
    marker: str | None = None
    for _job in range(len(items) + 2):
        shown_limit = None if limit is None else str(limit)
        params = InventoryParams(format=fmt, limit=shown_limit, marker=marker)
        data, marker, fetch = render(items, params, page_size=page_size)
        page = ordered[len(seen) : len(seen) + (limit or len(items))]
        assert data == reference(fmt, page, T0)  # streamed == rendered in one go
        assert parse_inventory(fmt, data).rows == [expected_row(i) for i in page]
        assert all(ask <= page_size + 1 for _, ask in fetch.asks)
        if limit is not None:
            assert sum(ask for _, ask in fetch.asks) <= limit + 1
        seen.extend(page)
        if marker is None:
            break
        assert len(page) == limit
        assert marker == encode_marker(*position(page[-1]))
    else:
        pytest.fail("the markers never ran out")
    assert seen == ordered


# --- streaming -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JSON", "CSV"])
def test_large_inventory_is_streamed_page_by_page(fmt: str) -> None:
    total, page_size = 200_000, 1000
    base = datetime(2020, 1, 1, tzinfo=UTC)

    def make(index: int) -> InventoryItem:
        return InventoryItem(
            f"id-{index:08d}", f"file {index}", base + timedelta(seconds=index // 3), index, HASH
        )

    asks: list[int] = []

    def fetch(after: Position | None, limit: int) -> list[InventoryItem]:
        # Generated on demand: the test holds no more items than the writer asks for.
        asks.append(limit)
        start = 0 if after is None else int(after[1][3:]) + 1
        return [make(i) for i in range(start, min(start + limit, total))]

    written = {"bytes": 0, "chunks": 0, "largest": 0, "records": 0}

    def write(chunk: bytes) -> None:
        written["bytes"] += len(chunk)
        written["chunks"] += 1
        written["largest"] = max(written["largest"], len(chunk))
        written["records"] += chunk.count(b'"ArchiveId"' if fmt == "JSON" else b"\n")

    outcome = write_inventory(fetch, InventoryParams(format=fmt), ARN, T0, write)
    assert max(asks) <= page_size + 1
    assert len(asks) == total // page_size + 1
    assert outcome.size == written["bytes"] > 100 * written["largest"]
    assert written["largest"] < 200 * page_size
    assert written["records"] == total + (1 if fmt == "CSV" else 0)
    assert outcome.next_marker is None


def test_large_limit_never_asks_for_more_than_a_page() -> None:
    fetch = ListFetch([item(i) for i in range(50)])
    outcome = write_inventory(
        fetch, InventoryParams(limit=str(10**30)), ARN, T0, Sink(), page_size=7
    )
    assert outcome.next_marker is None
    assert max(limit for _, limit in fetch.asks) == 7
