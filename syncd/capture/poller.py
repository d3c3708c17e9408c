"""Polling a channel resource: events and the advanced cursor commit together, or neither does."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from syncd.capture.pace import Pace
from syncd.channels.base import Channel, ChannelError
from syncd.store import commands
from syncd.store.apply import Policy
from syncd.store.queries import Reader
from syncd.store.writer import Writer

log = structlog.get_logger(__name__)


class Poller:
    """Runs one poll of (channel, resource) when the scheduler calls it."""

    def __init__(
        self,
        channel: Channel,
        resource: str,
        writer: Writer,
        reader: Reader,
        policy: Policy,
        pace: Pace | None = None,
        last_delivery: Callable[[], datetime | None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.channel = channel
        self.resource = resource
        self.writer = writer
        self.reader = reader
        self.policy = policy
        self.pace = pace
        self.last_delivery = last_delivery
        self.clock = clock
        self.last_run: datetime | None = None
        self._failing = False

    def due(self) -> bool:
        """Whether the pace wants a poll now (the scheduler ticks at the shortest interval)."""
        if self.pace is None or self.last_run is None:
            return True
        now = self.clock()
        # A little slack so a tick that lands a hair early does not skip a whole interval.
        return (now - self.last_run).total_seconds() >= self.pace.interval(now, self.last_delivery()) * 0.95

    async def run(self) -> None:
        """One poll if due; failures are recorded on the channel and logged once until it recovers.

        A poll cancelled midway (the daemon stopping) commits nothing: its events and cursor are
        submitted together at the end.
        """
        if not self.due():
            return
        self.last_run = self.clock()
        name, resource = self.channel.name, self.resource
        facts = await self.reader.rows("SELECT cursors FROM channel_state WHERE channel = ?", (name,))
        cursor = json.loads(facts[0]["cursors"]).get(resource) if facts else None
        try:
            result = await self.channel.poll(resource, cursor)
        except ChannelError as err:
            message = f"{type(err).__name__}: {err}"
            await self.writer.submit(lambda tx: commands.channel_failure(tx, name, message))
            if not self._failing:
                log.warning("poll failing", channel=name, resource=resource, error=message)
                self._failing = True
            return
        policy = self.policy
        outcome = await self.writer.submit(lambda tx: commands.ingest_poll(
            tx, name, resource, result.events, result.cursor, result.complete_through, policy))
        if self._failing:
            log.info("poll recovered", channel=name, resource=resource)
            self._failing = False
        if outcome.applied:
            log.info("poll applied events", channel=name, resource=resource, applied=outcome.applied,
                     seen=len(result.events))
