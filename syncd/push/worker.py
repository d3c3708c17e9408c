"""One push worker per channel: due outbox rows → the adapter, under its limits → outcome via the writer."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from syncd.channels.base import AuthExpired, Channel, ListingRef, Permanent, RateLimited, Transient
from syncd.domain.models import Field
from syncd.store import commands
from syncd.store.queries import Reader
from syncd.store.writer import Writer

log = structlog.get_logger(__name__)


class PushWorker:
    """Drains one channel's outbox: never two pushes in flight for one listing, newest value sent."""

    def __init__(
        self,
        channel: Channel,
        writer: Writer,
        reader: Reader,
        retry: commands.RetryPolicy,
        concurrency: int = 4,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.channel = channel
        self.name = channel.name
        self.writer = writer
        self.reader = reader
        self.retry = retry
        self.concurrency = concurrency
        self.clock = clock
        self.rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._inflight: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._paused_until: datetime | None = None
        self._failing = False
        self._stopping = False
        self.pushed = 0

    def wake(self) -> None:
        """Look at the outbox now (called after a commit that changed it)."""
        self._wake.set()

    async def run(self) -> None:
        """Loop until stopped; a failure in one round is logged and the loop goes on."""
        while not self._stopping:
            # Clear before looking, so a wake-up that arrives during the round is not lost.
            self._wake.clear()
            try:
                timeout = await self._round()
            except Exception:
                log.exception("push round failed", channel=self.name)
                timeout = 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _round(self) -> float:
        now = self.clock()
        if self._paused_until and now < self._paused_until:
            return (self._paused_until - now).total_seconds()
        free = self.concurrency - len(self._tasks)
        if free > 0:
            rows = await self.reader.due_pushes(self.name, now, limit=free + len(self._inflight))
            for row in rows:
                if free <= 0:
                    break
                if row["listing_id"] in self._inflight:
                    continue
                self._inflight.add(row["listing_id"])
                task = asyncio.create_task(self._push(row))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                free -= 1
        nxt = await self.reader.next_push_time(self.name)
        if nxt is None:
            return 5.0
        return min(5.0, max(0.02, (nxt - self.clock()).total_seconds()))

    async def _push(self, row: dict[str, Any]) -> None:
        listing_id, field, value, version = row["listing_id"], Field(row["field"]), row["value"], row["version"]
        ref = ListingRef(external_id=row["external_id"], variation_id=row["variation_id"] or None, sku=row["sku"])
        try:
            outcome = await self._call(ref, field, value)
            if outcome is None:
                await self.writer.submit(
                    lambda tx: commands.push_succeeded(tx, self.name, listing_id, field, value, version))
                self.pushed += 1
                self._recovered()
            else:
                kind, error, retry_after = outcome
                jitter = self.rng.uniform(0.5, 1.0)
                await self.writer.submit(lambda tx: commands.push_failed(
                    tx, self.name, listing_id, field, version, kind, error, retry_after, jitter, self.retry))
        except Exception:
            log.exception("recording push outcome failed", channel=self.name, listing_id=listing_id)
        finally:
            self._inflight.discard(listing_id)
            self._wake.set()

    async def _call(self, ref: ListingRef, field: Field, value: str) -> tuple[str, str, float | None] | None:
        try:
            await self.channel.push(ref, field, value)
        except RateLimited as err:
            if err.retry_after:
                self._paused_until = self.clock() + timedelta(seconds=err.retry_after)
            return ("rate_limited", str(err), err.retry_after)
        except Permanent as err:
            log.warning("push refused", channel=self.name, listing=ref.external_id, field=field.value, error=str(err))
            return ("permanent", str(err), None)
        except (Transient, AuthExpired) as err:
            self._failed(err)
            return ("transient", str(err), getattr(err, "retry_after", None))
        except Exception as err:  # an adapter bug must not kill the worker; treat it as transient
            log.exception("push raised an untyped error", channel=self.name)
            return ("transient", f"{type(err).__name__}: {err}", None)
        return None

    def _failed(self, err: Exception) -> None:
        if not self._failing:  # log once when a channel starts failing, once when it recovers
            log.warning("channel push failing", channel=self.name, error=str(err))
            self._failing = True

    def _recovered(self) -> None:
        if self._failing:
            log.info("channel push recovered", channel=self.name)
            self._failing = False

    async def stop(self) -> None:
        """Stop taking rows and wait for pushes in flight (their outcomes are recorded)."""
        self._stopping = True
        self._wake.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

