"""Resolving pointer notifications: the pointer is durable first, the resource is fetched after."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial

import structlog

from syncd.capture.events import EVENT_ADAPTER, Notification
from syncd.channels.base import ChannelError, Fetcher, Permanent
from syncd.push.backoff import retry_delay
from syncd.store import commands
from syncd.store.apply import Policy
from syncd.store.queries import Reader
from syncd.store.writer import Writer

log = structlog.get_logger(__name__)

# Transient failures (an outage) are retried with backoff, at most 30 s apart (about 2.5 h in all),
# before a pointer is given up on; the backstop polls recover its resource anyway. A permanent
# refusal gives up at once.
MAX_FETCH_ATTEMPTS = 300
RETRY_CAP_SECONDS = 30.0


class NotificationFetcher:
    """Drains `pending_fetch` inbox rows through each channel's Fetcher."""

    def __init__(
        self,
        fetchers: Mapping[str, Fetcher],
        writer: Writer,
        reader: Reader,
        policy: Policy,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.fetchers = fetchers
        self.clock = clock
        self.rng = random.Random()
        self.writer = writer
        self.reader = reader
        self.policy = policy
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """New pointers were committed."""
        self._wake.set()

    async def run(self) -> None:
        """Loop until stopped."""
        while not self._stopping:
            self._wake.clear()
            try:
                busy = await self.drain()
            except Exception:
                log.exception("notification fetch round failed")
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 2.0)

    async def drain(self) -> bool:
        """Fetch what is pending once; True when something was resolved.

        Pointers to the same resource are resolved by one fetch: during a burst a marketplace sends
        many notifications for one item, and its current state answers all of them.
        """
        rows = await self.reader.pending_notifications(self.clock(), limit=200)
        groups: dict[tuple[str, str, str], list[dict[str, object]]] = {}
        for row in rows:
            body = EVENT_ADAPTER.validate_json(str(row["payload"])).body
            assert isinstance(body, Notification)
            if body.channel in self.fetchers:
                groups.setdefault((body.channel, body.topic, body.resource), []).append(row)
        progressed = False
        for (channel, topic, resource), members in groups.items():
            ids = [int(str(m["id"])) for m in members]
            try:
                events = await self.fetchers[channel].fetch(topic, resource)
            except ChannelError as err:
                attempts = int(str(members[0]["attempts"])) + 1
                give_up = isinstance(err, Permanent) or attempts >= MAX_FETCH_ATTEMPTS
                message = f"{type(err).__name__}: {err}"
                hint = getattr(err, "retry_after", None)
                retry_in = retry_delay(attempts, 1.0, RETRY_CAP_SECONDS, self.rng.uniform(0.5, 1.0), hint)
                await self.writer.submit(partial(commands.notification_failed, inbox_ids=ids, error=message,
                                                 give_up=give_up, retry_in=retry_in))
                continue
            await self.writer.submit(partial(commands.resolve_notification, inbox_ids=ids, events=events,
                                             policy=self.policy))
            progressed = True
        return progressed

    def stop(self) -> None:
        """Stop after the current round."""
        self._stopping = True
        self._wake.set()
