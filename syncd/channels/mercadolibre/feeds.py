"""Lost-notification recovery through `/missed_feeds`, reading only what earlier polls have not read.

ML keeps about two days of delivery history per topic and publishes neither its paging keys nor its
sort order (APIS_EVIDENCE §2.1, §4). Re-reading the whole history on every poll costs one call per
50 messages per topic, so each topic remembers (in memory) which way the pages run, learned from the
`received` stamps, where the newest handled message sat, and the messages already handled. A routine
poll then reads from there on: about one call per topic when nothing happened. Every
`FULL_SCAN_EVERY`, and on the first poll of a process, the whole overlap window is read again and
every undelivered message in it re-reported (dedupe makes that free), which catches messages that
showed up late behind the newest one and any poll whose events were not stored.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from pydantic import ValidationError

from syncd.capture.events import Event
from syncd.channels.base import Permanent, PollResult
from syncd.channels.mercadolibre.client import MercadoLibreClient
from syncd.channels.mercadolibre.mapping import iso, notification_event, parse_cursor
from syncd.channels.mercadolibre.models import MissedFeed, MissedFeedsPage
from syncd.channels.mercadolibre.webhook import HANDLED_TOPICS, parse_notification
from syncd.config import MercadoLibreSettings

log = structlog.get_logger(__name__)

MISSED_TOPICS = ("orders_v2", "shipments", "items")
MISSED_PAGE = 50
MISSED_MAX_PAGES = 100  # per topic and poll: a server that ignores `offset` cannot loop us
MISSED_OVERLAP = timedelta(hours=1)  # ML keeps retrying for ~1 h; a message may turn failed that late
FULL_SCAN_EVERY = timedelta(minutes=10)
SEEN_PER_TOPIC = 5000  # handled messages remembered per topic; forgetting one only costs a re-read


@dataclass(frozen=True, slots=True)
class _Message:
    """One entry of a page; `feed` is None when the entry could not be read."""

    key: str
    received: datetime | None
    feed: MissedFeed | None


@dataclass
class _TopicState:
    """What one topic's earlier polls learned about its history."""

    newest_first: bool | None = None  # page order, learned from `received`; None until seen
    resume_at: int | None = None  # oldest-first pages: offset of the newest message handled
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def remember(self, keys: list[str]) -> None:
        """Mark messages handled (bounded, least recently handled forgotten first)."""
        for key in keys:
            self.seen[key] = None
            self.seen.move_to_end(key)
        while len(self.seen) > SEEN_PER_TOPIC:
            self.seen.popitem(last=False)


class _OutOfPages(Exception):
    """The page budget of one topic ran out."""


class _TopicScan:
    """One poll of one topic: the pages it read and the messages it has to handle."""

    def __init__(self, feeds: MissedFeeds, topic: str, threshold: datetime | None, full: bool) -> None:
        self.feeds = feeds
        self.topic = topic
        self.state = feeds.topics[topic]
        self.threshold = threshold
        self.full = full
        self.pages: dict[int, list[_Message]] = {}
        self.found: dict[str, _Message] = {}
        self.newest: datetime | None = None

    def behind(self, message: _Message) -> bool:
        """True when the message was handled already (by age, or by an earlier routine poll)."""
        if self.threshold is not None and message.received is not None and message.received < self.threshold:
            return True
        return not self.full and message.key in self.state.seen

    async def page(self, offset: int) -> list[_Message]:
        """The messages at `offset` (each offset is read at most once per poll)."""
        if offset in self.pages:
            return self.pages[offset]
        if len(self.pages) >= MISSED_MAX_PAGES:
            raise _OutOfPages
        messages = await self.feeds.read_page(self.topic, offset)
        self.pages[offset] = messages
        stamps = [m.received for m in messages if m.received is not None]
        if len(stamps) >= 2 and stamps[0] != stamps[-1]:
            self.state.newest_first = stamps[0] > stamps[-1]
        for message in messages:
            if message.received is not None and (self.newest is None or message.received > self.newest):
                self.newest = message.received
            if not self.behind(message):
                self.found.setdefault(message.key, message)
        return messages

    async def run(self) -> None:
        """Read every page that may hold a message not handled yet, and no other."""
        state = self.state
        start = state.resume_at if state.newest_first is False and state.resume_at is not None else 0
        try:
            messages = await self.page(start)
            if state.newest_first:
                await self._from_the_top(await self.page(0))
            else:
                await self._towards_the_end(start, messages)
        except _OutOfPages:
            log.warning("mercadolibre.missed_feeds_truncated", topic=self.topic, pages=len(self.pages))
            state.resume_at = None
        state.remember([key for key, m in self.found.items() if m.feed is not None])

    async def _from_the_top(self, messages: list[_Message]) -> None:
        # Newest first: stop at the first page that ends in something already handled.
        offset = 0
        while len(messages) == MISSED_PAGE and not self.behind(messages[-1]):
            offset += len(messages)
            messages = await self.page(offset)

    async def _towards_the_end(self, offset: int, messages: list[_Message]) -> None:
        # Oldest first (or not known yet): the new messages are at the end.
        offset, messages = await self._skip_handled(offset, messages)
        # Walk back while the page may start after something unhandled (offsets shift as the history
        # is pruned, so `resume_at` can land past the newest handled message).
        low = offset
        while low > 0 and (not messages or not self.behind(messages[0])):
            low = max(0, low - MISSED_PAGE)
            messages = await self.page(low)
        offset = low
        messages = await self.page(offset)
        while len(messages) == MISSED_PAGE:
            offset += len(messages)
            messages = await self.page(offset)
        self.state.resume_at = max(0, offset + len(messages) - 1)

    async def _skip_handled(self, offset: int, messages: list[_Message]) -> tuple[int, list[_Message]]:
        """Gallop over full pages of handled messages, then bisect back if that overshot the end."""
        if self.state.newest_first is not False:
            return offset, messages
        done, step = None, MISSED_PAGE
        while len(messages) == MISSED_PAGE and all(self.behind(m) for m in messages):
            done, offset = offset, offset + step
            step *= 2
            messages = await self.page(offset)
        if messages or done is None:
            return offset, messages
        empty = offset
        while empty - done > MISSED_PAGE:
            middle = (done + empty) // 2
            found = await self.page(middle)
            if not found:
                empty = middle
            elif len(found) == MISSED_PAGE and all(self.behind(m) for m in found):
                done = middle
            else:
                return middle, found
        return done, self.pages[done]


class MissedFeeds:
    """The `missed_feeds` poll of one MercadoLibre application."""

    def __init__(
        self, settings: MercadoLibreSettings, client: MercadoLibreClient, clock: Callable[[], datetime]
    ) -> None:
        self.settings = settings
        self.client = client
        self.clock = clock
        self.topics = {topic: _TopicState() for topic in MISSED_TOPICS}
        self.full_scan_at: datetime | None = None

    async def poll(self, cursor: str | None) -> PollResult:
        """Undelivered notifications since the cursor (the newest `received` read, ISO)."""
        since = parse_cursor(cursor)
        now = self.clock()
        full = self.full_scan_at is None or now - self.full_scan_at >= FULL_SCAN_EVERY
        threshold = since - MISSED_OVERLAP if since is not None else None
        newest = since
        events: list[Event] = []
        for topic in MISSED_TOPICS:
            scan = _TopicScan(self, topic, threshold, full)
            await scan.run()
            if scan.newest is not None and (newest is None or scan.newest > newest):
                newest = scan.newest
            for message in scan.found.values():
                feed = message.feed
                if feed is None or (feed.response is not None and feed.response.http_code == 200):
                    continue  # unreadable, or delivered: the webhook path already stored it
                event = self._event(feed)
                if event is not None:
                    events.append(event)
        if full:
            self.full_scan_at = now
        return PollResult(events, iso(newest) if newest else cursor)

    async def read_page(self, topic: str, offset: int) -> list[_Message]:
        """One page of a topic's history, each entry parsed on its own."""
        params: dict[str, Any] = {
            "app_id": self.settings.application_id,
            "topic": topic,
            "limit": MISSED_PAGE,
            "offset": offset,
        }
        if topic == "items":
            params["site_id"] = self.settings.site_id  # required with topic=items
        raw = await self.client.get("missed_feeds", "/missed_feeds", params)
        try:
            page = MissedFeedsPage.model_validate(raw)
        except ValidationError:
            raise Permanent("mercadolibre: unexpected MissedFeedsPage body") from None
        return [_message(entry, offset + n) for n, entry in enumerate(page.messages)]

    def _event(self, feed: MissedFeed) -> Event | None:
        delivered: Any = None
        if feed.request is not None and feed.request.data:
            try:
                delivered = json.loads(feed.request.data)  # `data` is the delivered body as a JSON string
            except ValueError:
                delivered = None
        if not isinstance(delivered, dict):
            delivered = feed.model_dump(mode="json", exclude={"id", "request", "response"}, exclude_none=True)
        try:
            note, raw = parse_notification(delivered, self.settings.user_id, self.settings.application_id)
        except ValueError as err:
            log.warning("mercadolibre.missed_feed_unreadable", reason=str(err))
            return None
        if note.topic not in HANDLED_TOPICS:
            return None
        return notification_event(note, raw, self.clock())


def _message(entry: Any, position: int) -> _Message:
    try:
        feed = MissedFeed.model_validate(entry)
    except ValidationError:
        log.warning("mercadolibre.missed_feed_unreadable", reason="unexpected message shape")
        return _Message(f"unreadable:{position}", None, None)
    # `_id` names the history entry; without it, what ML registered and when identifies it.
    key = feed.id or f"{feed.topic}|{feed.resource}|{iso(feed.received) if feed.received else feed.sent}"
    return _Message(key, feed.received, feed)
