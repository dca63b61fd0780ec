"""What one blob's verification concludes, and its repair from a second copy.

With one store, a damaged blob has no good copy: its archive is quarantined
and the record says there is no replica. With a replicated store
(`ports.BlobCopies`), each copy is verified on its own; a damaged or missing
copy is rewritten from the good one (`restore`), verified again, and the
record is closed as repaired. Reads fall back to the good copy by themselves,
so an archive with one good copy is never quarantined; with both copies
damaged it is.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from openglacier.domain.damage import NO_REPLICA_NOTE
from openglacier.ports import BlobCopies, BlobStore

log = logging.getLogger("openglacier.scrub")

COPY_NAMES = ("primary", "replica")
BOTH_DAMAGED_NOTE = "both copies are damaged: restore the archive from another copy"
RESTORED_NOTE = "verified good again by the scrubber (restored outside OpenGlacier)"

# Verifies one copy (a store) of the blob being scrubbed: its problem or None.
CheckCopy = Callable[[BlobStore, bool], Awaitable[str | None]]
Restore = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class Verdict:
    """A blob's state after verification (and repair, when there was one)."""

    problem: str | None  # None: every copy is good
    quarantined: bool = False  # no good copy is known
    repaired: bool = False
    note: str | None = None


async def single(blobs: BlobStore, check: CheckCopy) -> Verdict:
    problem = await check(blobs, True)
    if problem is None:
        return Verdict(None)
    return Verdict(problem, quarantined=True, note=NO_REPLICA_NOTE)


async def replicated(copies: BlobCopies, check: CheckCopy, restore: Restore) -> Verdict:
    stores = copies.copies
    problems = [await check(stores[0], True), await check(stores[1], False)]
    bad = [i for i, p in enumerate(problems) if p is not None]
    if not bad:
        return Verdict(None)
    described = "; ".join(f"{COPY_NAMES[i]} copy: {problems[i]}" for i in bad)
    if len(bad) == 2:
        return Verdict(described, quarantined=True, note=BOTH_DAMAGED_NOTE)
    damaged = bad[0]
    good = 1 - damaged
    what = f"the {COPY_NAMES[damaged]} copy from the {COPY_NAMES[good]} copy"
    try:
        await restore(good)
    except Exception as exc:  # an outage or a refused write: the record says so
        log.warning("restoring %s failed: %s", what, exc)
        return Verdict(described, note=f"restoring {what} failed ({exc}); the next pass retries")
    again = await check(stores[damaged], False)
    if again is not None:
        return Verdict(described, note=f"restored {what}, but it does not verify: {again}")
    return Verdict(described, repaired=True, note=f"restored {what} and verified it")
