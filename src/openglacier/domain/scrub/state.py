"""The scrubber's persisted state: the lease that lets one process scrub at a
time, the pass in progress and its cursor (so a restarted or another process
continues where it stopped), and the status operators read.

The lease is taken and renewed in the scrub_state row (MetadataTx
take_scrub_lease / save_scrub_state). Every progress write is fenced by it: a
process that lost the lease (it stalled past the expiry and another took over)
gets `LeaseLost` at its next write and stops, so two processes never both
advance one pass.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from openglacier.clock import iso_ms
from openglacier.domain.context import Deps
from openglacier.domain.scrub.pacing import next_pass_at
from openglacier.ports import MetadataTx, ScrubState

LEASE = timedelta(seconds=60)


class LeaseLost(Exception):
    """Another process took the scrubber's lease over: stop scrubbing."""


class ScrubBusy(Exception):
    """Another process holds the lease: one line saying who and until when."""

    def __init__(self, state: ScrubState | None) -> None:
        holder = state.lease_holder if state else "another process"
        until = iso_ms(state.lease_until) if state and state.lease_until else "?"
        super().__init__(
            f"another process is scrubbing ({holder}, lease until {until}): wait for its "
            "pass to end (`openglacier scrub status` shows its progress)"
        )


def new_holder() -> str:
    """Names this process in the lease (and in `scrub status`)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


class Ledger:
    """This holder's view of the scrub_state row: take, renew, checkpoint,
    finish and release, each one short transaction."""

    def __init__(self, deps: Deps, holder: str, lease: timedelta = LEASE) -> None:
        self.deps = deps
        self.holder = holder
        self.lease = lease
        self.state = ScrubState()

    async def take(self) -> ScrubState | None:
        now = self.deps.clock.now()
        taken = await self.deps.in_tx(
            partial(_take, holder=self.holder, now=now, until=now + self.lease)
        )
        if taken is not None:
            self.state = taken
        return taken

    async def start_pass(self) -> None:
        """A new pass from the first key (any pass in progress is abandoned)."""
        fresh = replace(
            self.state,
            pass_started_at=self.deps.clock.now(),
            cursor_key=None,
            bytes_done=0,
            blobs_done=0,
            damage_found=0,
        )
        await self.save(fresh)

    def renewal_due(self) -> bool:
        until = self.state.lease_until
        return until is None or until - self.deps.clock.now() < self.lease / 2

    async def save(self, state: ScrubState) -> None:
        """Store `state` with the lease renewed; LeaseLost if it was taken."""
        state = replace(
            state, lease_holder=self.holder, lease_until=self.deps.clock.now() + self.lease
        )
        if not await self.deps.in_tx(partial(_save, holder=self.holder, state=state)):
            raise LeaseLost(self.holder)
        self.state = state

    async def finish_pass(self) -> ScrubState:
        """Record the pass as finished and release the lease."""
        s = self.state
        done = replace(
            s,
            pass_started_at=None,
            cursor_key=None,
            bytes_done=0,
            blobs_done=0,
            damage_found=0,
            last_started_at=s.pass_started_at,
            last_finished_at=self.deps.clock.now(),
            last_bytes=s.bytes_done,
            last_blobs=s.blobs_done,
            last_damage=s.damage_found,
            passes_completed=s.passes_completed + 1,
        )
        await self.release(done)
        return done

    async def release(self, state: ScrubState | None = None) -> None:
        """Give the lease up (keeping the progress), so another process can
        continue at once instead of after the expiry."""
        final = replace(state or self.state, lease_holder=None, lease_until=None)
        if not await self.deps.in_tx(partial(_save, holder=self.holder, state=final)):
            raise LeaseLost(self.holder)
        self.state = final


def _take(tx: MetadataTx, *, holder: str, now: datetime, until: datetime) -> ScrubState | None:
    return tx.take_scrub_lease(holder, now, until)


def _save(tx: MetadataTx, *, holder: str, state: ScrubState) -> bool:
    return tx.save_scrub_state(holder, state)


def status(
    state: ScrubState | None,
    damage_counts: tuple[int, int],
    interval: timedelta,
    now: datetime,
) -> dict[str, Any]:
    """What `GET /_admin/scrub` and `openglacier scrub status --json` show."""
    s = state or ScrubState()
    when = _iso_or_none
    leased = s.lease_holder is not None and s.lease_until is not None and s.lease_until > now
    current = None
    if s.pass_started_at is not None:
        current = {
            "started_at": when(s.pass_started_at),
            "cursor": s.cursor_key,
            "bytes_done": s.bytes_done,
            "blobs_done": s.blobs_done,
            "damage_found": s.damage_found,
        }
    last = None
    if s.last_finished_at is not None:
        last = {
            "started_at": when(s.last_started_at),
            "finished_at": when(s.last_finished_at),
            "bytes": s.last_bytes,
            "blobs": s.last_blobs,
            "damage_found": s.last_damage,
        }
    return {
        "current_pass": current,
        "last_pass": last,
        "passes_completed": s.passes_completed,
        "next_pass_due": when(next_pass_at(state, interval)) or "now",
        "lease": {"holder": s.lease_holder, "until": when(s.lease_until)} if leased else None,
        "damage": {"open": damage_counts[0], "repaired": damage_counts[1]},
    }


def _iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else iso_ms(value)
