"""An in-memory implementation of the Channel Protocol for core tests (shipped code has none)."""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Sequence
from datetime import UTC, datetime

from syncd.capture.events import Event
from syncd.channels.base import ChannelError, ListingRef, Observation, PollResult, TokenRecord
from syncd.domain.models import Field


class MemoryChannel:
    """A marketplace in a dict: pushes land in `values`; queued errors make pushes fail."""

    def __init__(self, name: str, delay: float = 0.0) -> None:
        self.name = name
        self.delay = delay
        self.values: dict[tuple[str, str | None, str], str] = {}
        self.history: list[tuple[str, str | None, str, str]] = []
        self.errors: deque[ChannelError] = deque()
        self.always: ChannelError | None = None  # fail every call while set (an outage)
        self.inflight: Counter[str] = Counter()
        self.max_inflight_per_listing = 0
        self.pending_events: list[Event] = []
        self.poll_resources = {"orders": 3600.0}
        self.poll_error: ChannelError | None = None
        self.polls = 0

    async def push(self, ref: ListingRef, field: Field, value: str) -> None:
        """Set a value, or fail as told."""
        key = ref.external_id + "/" + (ref.variation_id or "")
        self.inflight[key] += 1
        self.max_inflight_per_listing = max(self.max_inflight_per_listing, self.inflight[key])
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.always is not None:
                raise self.always
            if self.errors:
                raise self.errors.popleft()
            self.values[(ref.external_id, ref.variation_id, field.value)] = value
            self.history.append((ref.external_id, ref.variation_id, field.value, value))
        finally:
            self.inflight[key] -= 1

    def qty(self, external_id: str, variation_id: str | None = None) -> int | None:
        """The quantity last set on a listing."""
        value = self.values.get((external_id, variation_id, "quantity"))
        return int(value) if value is not None else None

    async def read_listings(self, refs: Sequence[ListingRef]) -> list[Observation]:
        """What the dict holds."""
        return [Observation(ref=r, quantity=self.qty(r.external_id, r.variation_id)) for r in refs]

    async def poll(self, resource: str, cursor: str | None) -> PollResult:
        """Hand over queued events."""
        self.polls += 1
        if self.poll_error is not None:
            raise self.poll_error
        events, self.pending_events = self.pending_events, []
        return PollResult(events=events, cursor=str(self.polls), complete_through=datetime.now(UTC))

    async def close(self) -> None:
        """Nothing to release; kept for the Protocol."""
        self.pending_events.clear()


class MemoryTokens:
    """An in-memory TokenStore (the daemon's is the `tokens` table, written through the writer)."""

    def __init__(self) -> None:
        self.records: dict[str, TokenRecord] = {}

    async def load(self, channel: str) -> TokenRecord | None:
        """The last saved record."""
        return self.records.get(channel)

    async def save(self, channel: str, record: TokenRecord) -> None:
        """Keep the record."""
        self.records[channel] = record
