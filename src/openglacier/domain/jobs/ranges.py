"""Archive retrieval ranges: byte ranges, GetJobOutput windows, checksums from leaves.

Spec 2.26 (`RetrievalByteRange`), 2.29 (GetJobOutput `Range`), 3.5-3.6
(alignment, checksums on retrieval) and 4.4. Everything here is pure: no blob
is read (the verified reads are in `reads`).

Offsets: `RetrievalByteRange` uses absolute archive offsets; a GetJobOutput
`Range` and `OutputWindow` are relative to the job's output, i.e. to the
retrieved range R = [r0, r1] (spec 2.29). Every range is inclusive, as on the
wire.

Checksums never read data: an archive's 1 MiB leaf digests are stored with its
segments (`Segment.leaf_hashes`), and the tree hash of any tree-hash aligned
range is the root over a slice of them (`treehash.range_tree_hash`).
`check_layout` checks the segment layout that leaf concatenation here and the
reads in `reads` rely on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from openglacier.errors import IntegrityError, InvalidParameterValueException
from openglacier.records import Segment
from openglacier.treehash import (
    DIGEST_LEN,
    MIB,
    is_megabyte_aligned,
    is_tree_hash_aligned,
    leaf_count,
    range_tree_hash,
)

__all__ = [
    "OutputWindow",
    "archive_leaves",
    "output_checksum",
    "parse_retrieval_range",
    "plan_output",
    "retrieval_tree_hash",
]

# Decimal offsets, ASCII digits only (`\d` would accept other scripts' digits).
_RETRIEVAL_RANGE = re.compile(r"\A([0-9]+)-([0-9]+)\Z")
# RFC 9110 14.1: range units are case-insensitive. Blanks around "=" are not in
# the grammar but are accepted (lenient, and harmless).
_BYTES_UNIT = re.compile(r"\A[ \t]*bytes[ \t]*=(.*)\Z", re.IGNORECASE | re.DOTALL)
_BYTE_RANGE_SPEC = re.compile(r"\A(?:([0-9]+)-([0-9]*)|-([0-9]+))\Z")
# Offsets longer than this are all "beyond any archive" (sizes are < 2**64);
# capping keeps int() away from its digit limit on hostile input.
_MAX_DIGITS = 30


def _decimal(text: str) -> int:
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


# --- InitiateJob RetrievalByteRange (spec 2.26, 4.4) -------------------------


def parse_retrieval_range(value: str | None, archive_size: int) -> tuple[int, int]:
    """`RetrievalByteRange` as absolute inclusive offsets; None means the whole archive.

    Rejected with InvalidParameterValueException: anything but two decimal
    numbers joined by "-" (no signs, spaces or empty parts), start > end,
    end >= archive size, and ranges that are not megabyte aligned (spec 3.5).
    """
    if archive_size < 1:
        raise ValueError(f"archive size must be positive, not {archive_size}")
    if value is None:
        return 0, archive_size - 1
    match = _RETRIEVAL_RANGE.match(value)
    if match is None:
        raise InvalidParameterValueException(
            f"Invalid RetrievalByteRange: {value}. Expected StartByte-EndByte,"
            " inclusive decimal byte offsets."
        )
    first, last = _decimal(match[1]), _decimal(match[2])
    if first > last:
        raise InvalidParameterValueException(
            f"Invalid RetrievalByteRange: {value}. The start is greater than the end."
        )
    if last >= archive_size:
        raise InvalidParameterValueException(
            f"Invalid RetrievalByteRange: {value}. The end is beyond the last byte of"
            f" the archive ({archive_size - 1})."
        )
    if not is_megabyte_aligned(first, last, archive_size):
        raise InvalidParameterValueException(
            f"Invalid RetrievalByteRange: {value}. The range must be megabyte aligned:"
            f" the start a multiple of {MIB} and the end one less than a multiple of"
            f" {MIB} or the last byte of the archive."
        )
    return first, last


def archive_leaves(segments: Sequence[Segment]) -> bytes:
    """The archive's 1 MiB leaf digests: its segments' leaves in range order.

    `segments` must be all of the archive's segments, in offset order; an
    inconsistent layout (gap, overlap, wrong leaf count) is an IntegrityError.
    """
    start, _ = check_layout(segments)
    if start != 0:
        raise IntegrityError(
            f"segments of archive {segments[0].archive_id} start at byte {start}, not 0"
        )
    return b"".join(segment.leaf_hashes for segment in segments)


def retrieval_tree_hash(leaves: bytes, first: int, last: int, size: int) -> str | None:
    """The job's `SHA256TreeHash`: tree hash of [first, last] iff that range is
    tree-hash aligned (spec 3.6), else None."""
    _check_leaves(leaves, size)
    return range_tree_hash(leaves, first, last, size)


# --- GetJobOutput Range (spec 2.29) ------------------------------------------


@dataclass(frozen=True)
class OutputWindow:
    """What one GetJobOutput response returns, relative to the job's output."""

    status: int  # 200 or 206
    first: int  # inclusive
    last: int  # inclusive, clamped to the output's last byte
    content_range: str | None  # "bytes {first}-{last}/{total}" on 206, else None

    @property
    def length(self) -> int:
        return self.last - self.first + 1


def _byte_range_specs(header: str) -> list[tuple[int | None, int | None]] | None:
    """(first, last) pairs of a `bytes=` ranges-specifier; None if it is not one.

    A suffix range `-n` is (None, n); an open range `a-` is (a, None). Empty list
    elements are skipped (RFC 9110 5.6.1). `a-b` with b < a is invalid (RFC 9110
    14.1.2), which makes the whole header invalid.
    """
    unit = _BYTES_UNIT.match(header)
    if unit is None:
        return None
    specs: list[tuple[int | None, int | None]] = []
    for raw in unit[1].split(","):
        element = raw.strip(" \t")
        if not element:
            continue
        match = _BYTE_RANGE_SPEC.match(element)
        if match is None:
            return None
        if match[3] is not None:
            specs.append((None, _decimal(match[3])))
            continue
        first = _decimal(match[1])
        last = _decimal(match[2]) if match[2] else None
        if last is not None and last < first:
            return None
        specs.append((first, last))
    return specs or None


def plan_output(range_header: str | None, total: int) -> OutputWindow:
    """Which bytes of a job output of `total` bytes to send, and how (spec 2.29).

    - No header, or a header that is not a valid `bytes=` ranges-specifier
      (`bytes 0-4194303/235812776`, `items=0-1`, `bytes=5-2`, garbage): ignored,
      200 with the whole output (RFC 9110 14.2 allows ignoring; spec 2.29 [O]).
    - One range: 206. `a-b` is clamped to the last byte; `a-` runs to the end;
      `-n` is the last n bytes (the whole output if n >= total).
    - A start at or beyond the end, including the empty suffix `-0`:
      InvalidParameterValueException with the real service's wording (Glacier
      has no 416).
    - Several ranges: InvalidParameterValueException (one body per response).
    """
    whole = OutputWindow(200, 0, total - 1, None)
    if range_header is None:
        return whole
    specs = _byte_range_specs(range_header)
    if specs is None:
        return whole
    if len(specs) > 1:
        raise InvalidParameterValueException(
            f"Multiple byte ranges are not supported: {range_header}"
        )
    start, end = specs[0]
    if start is None:
        assert end is not None  # a suffix range always has its length
        first, last = max(total - end, 0) if end else total, total - 1
    else:
        first, last = start, total - 1 if end is None else min(end, total - 1)
    if first >= total:
        raise InvalidParameterValueException(
            f"The start of the range is larger than size of retrieved data: {range_header}"
        )
    return OutputWindow(206, first, last, f"bytes {first}-{last}/{total}")


def output_checksum(
    leaves: bytes,
    archive_size: int,
    retrieved: tuple[int, int],
    window: OutputWindow,
    *,
    retrieved_aligned: bool,
) -> str | None:
    """`x-amz-sha256-tree-hash` for one GetJobOutput response of an archive job.

    Spec 3.6: present iff the job's retrieved range R is tree-hash aligned and so
    is the downloaded range D = [r0 + first, r0 + last], taken after clamping
    (boto 2 checks the header on its final, overrunning 4 MiB chunk). Because R
    is a node of the archive tree, D can be tested against the archive. The
    value is the tree hash of exactly the bytes returned, from the stored leaves.
    `retrieved_aligned` is what the job recorded; R is re-checked as well.
    """
    r0, r1 = retrieved
    if not (0 <= window.first <= window.last <= r1 - r0):
        raise ValueError(f"window {window.first}-{window.last} outside retrieved range {r0}-{r1}")
    if not retrieved_aligned or not is_tree_hash_aligned(r0, r1, archive_size):
        return None
    _check_leaves(leaves, archive_size)
    return range_tree_hash(leaves, r0 + window.first, r0 + window.last, archive_size)


def _check_leaves(leaves: bytes, size: int) -> None:
    if len(leaves) != leaf_count(size) * DIGEST_LEN:
        raise IntegrityError(
            f"{len(leaves)} bytes of leaf digests stored for an archive of {size} bytes"
            f" (expected {leaf_count(size) * DIGEST_LEN})"
        )


# --- segment layout ----------------------------------------------------------


def check_layout(segments: Sequence[Segment]) -> tuple[int, int]:
    """Check the invariants reads and leaf concatenation rely on; returns the
    covered bytes [start, end). Any violation means damaged metadata."""
    if not segments:
        raise IntegrityError("no segments")
    for i, segment in enumerate(segments):
        where = f"segment {segment.seq} (blob {segment.blob_key}) of archive {segment.archive_id}"
        if segment.size < 1 or segment.offset < 0 or segment.offset % MIB:
            raise IntegrityError(f"{where}: bad offset {segment.offset} or size {segment.size}")
        if i + 1 < len(segments) and segment.size % MIB:
            raise IntegrityError(f"{where}: size {segment.size} is not a whole number of MiB")
        if i and segment.offset != segments[i - 1].offset + segments[i - 1].size:
            raise IntegrityError(f"{where}: starts at {segment.offset}, not after the previous")
        if len(segment.leaf_hashes) != leaf_count(segment.size) * DIGEST_LEN:
            raise IntegrityError(
                f"{where}: {len(segment.leaf_hashes)} bytes of leaf digests for"
                f" {segment.size} bytes"
            )
    return segments[0].offset, segments[-1].offset + segments[-1].size
