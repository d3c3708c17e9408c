"""The 3PL channel: a count source polled for stock, receipts and shipments, and a webhook receiver."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import aiohttp

from syncd.capture.events import Event
from syncd.channels.base import ListingRef, Observation, Permanent, PollResult, TokenStore
from syncd.channels.threepl.client import API_WINDOW_SECONDS, ThreePLClient
from syncd.channels.threepl.mapping import (
    SOURCE,
    completed_at,
    count_event,
    is_shipped,
    observation,
    receipt_events,
    shipment_events,
)
from syncd.channels.threepl.models import InventoryLevel
from syncd.channels.threepl.webhook import ThreePLWebhookReceiver
from syncd.config import ThreePLSettings
from syncd.domain.models import Field

INVENTORY_PAGE_SIZE = 100
LIST_LIMIT = 250  # Get Orders allows Limit 1-250; the same for receiving orders
# Re-read this much before the cursor: a record can become visible a little after its timestamp.
# Re-reading is free, the events' dedupe keys make repeats no-ops.
CURSOR_OVERLAP = timedelta(minutes=5)
# On a first poll (no cursor) look back this far for shipments and receipts.
INITIAL_LOOKBACK = timedelta(days=1)
# Physical, sellable stock only: inactive and digital inventory counts as nothing (APIS.md §3.1).
STOCK_FILTER = {"IsActive": "true", "IsDigital": "false"}


class ThreePLChannel:
    """ShipBob-style 3PL behind the Channel Protocol, also its WebhookReceiver.

    The 3PL is where stock physically is, so it is a source of counts, receipts and shipments;
    syncd never pushes a quantity to it (`supports_push` is False and `push` raises Permanent).
    """

    name = SOURCE
    supports_push = False
    poll_resources = ("stock", "receipts", "shipments")

    def __init__(
        self,
        settings: ThreePLSettings,
        session: aiohttp.ClientSession,
        tokens: TokenStore | None = None,
        *,
        rate_window_seconds: float = API_WINDOW_SECONDS,
        wall_clock: Callable[[], datetime] | None = None,
        page_size: int = INVENTORY_PAGE_SIZE,
    ) -> None:
        # `tokens` is unused: a PAT does not rotate (see auth.PatAuth).
        self.settings = settings
        self.location = settings.location
        self._now = wall_clock or (lambda: datetime.now(UTC))
        self.client = ThreePLClient(settings, session, rate_window_seconds=rate_window_seconds, wall_clock=self._now)
        self.page_size = page_size
        # inventory_id -> 3PL SKU, refreshed by every stock poll; names bundle components in shipments.
        self.sku_of_inventory: dict[int, str] = {}
        self.webhooks = ThreePLWebhookReceiver(
            settings.webhook_secret.get_secret_value(), settings.location, self.sku_of_inventory
        )
        self._closed = False

    def poll_intervals(self) -> dict[str, float]:
        """Seconds between polls per resource; shipments is the backstop for lost webhooks."""
        return {
            "stock": self.settings.stock_poll_seconds,
            "receipts": self.settings.orders_poll_seconds,
            "shipments": self.settings.orders_poll_seconds,
        }

    async def push(self, ref: ListingRef, field: Field, value: str) -> None:
        """Unsupported: the 3PL reports stock, syncd never sets it there."""
        raise Permanent(f"threepl: push of {field} unsupported; the 3PL is a count source, not a sales channel")

    async def read_listings(self, refs: Sequence[ListingRef]) -> list[Observation]:
        """Inventory levels for these 3PL SKUs (`external_id`); unknown SKUs come back as "missing"."""
        self._check_open()
        by_sku: dict[str, InventoryLevel] = {}
        by_id: dict[str, InventoryLevel] = {}
        async for page, _ in self.client.inventory_pages(self.page_size, STOCK_FILTER):
            for level in page.items:
                by_id[str(level.inventory_id)] = level
                if level.sku:
                    by_sku[level.sku] = level
        return [observation(ref, by_sku.get(ref.external_id) or by_id.get(ref.external_id)) for ref in refs]

    async def poll(self, resource: str, cursor: str | None) -> PollResult:
        """`stock` (snapshot of on hand), `receipts` (completed WROs), `shipments` (orders poll)."""
        self._check_open()
        if resource == "stock":
            return await self._poll_stock()
        if resource == "receipts":
            return await self._poll_receipts(cursor)
        if resource == "shipments":
            return await self._poll_shipments(cursor)
        raise Permanent(f"threepl: unknown poll resource {resource!r} (have {', '.join(self.poll_resources)})")

    async def _poll_stock(self) -> PollResult:
        # No timestamp in an inventory level: each page's counts are as of that response's Date.
        events: list[Event] = []
        first_as_of: datetime | None = None
        seen: dict[int, str] = {}
        async for page, as_of in self.client.inventory_pages(self.page_size, STOCK_FILTER):
            first_as_of = first_as_of or as_of
            for level in page.items:
                if level.sku:
                    seen[level.inventory_id] = level.sku
                event = count_event(level, self.location, as_of)
                if event is not None:
                    events.append(event)
        self.sku_of_inventory.clear()
        self.sku_of_inventory.update(seen)
        started = first_as_of or self._now()
        return PollResult(events, cursor=started.isoformat(), complete_through=started)

    def _since(self, cursor: str | None, started: datetime) -> datetime:
        if not cursor:
            return started - INITIAL_LOOKBACK
        try:
            since = datetime.fromisoformat(cursor)
        except ValueError:
            raise Permanent(f"threepl: unreadable poll cursor {cursor!r}") from None
        return since if since.tzinfo else since.replace(tzinfo=UTC)

    async def _poll_shipments(self, cursor: str | None) -> PollResult:
        started = self._now()
        since = self._since(cursor, started)
        newest = since
        events: list[Event] = []
        page = 1
        while True:
            orders = await self.client.orders(since - CURSOR_OVERLAP, page, LIST_LIMIT)
            for order in orders:
                for shipment in order.shipments or []:
                    if not is_shipped(shipment.status):
                        continue
                    stamp = shipment.last_update_at or shipment.actual_fulfillment_date
                    if stamp is not None and stamp > newest:
                        newest = stamp
                    raw = shipment.model_dump(mode="json")
                    events.extend(shipment_events(shipment, self.location, started, self.sku_of_inventory, raw).events)
            if len(orders) < LIST_LIMIT:
                break
            page += 1
        return PollResult(events, cursor=newest.isoformat(), complete_through=started)

    async def _poll_receipts(self, cursor: str | None) -> PollResult:
        started = self._now()
        since = self._since(cursor, started)
        newest = since
        events: list[Event] = []
        page = 1
        while True:
            wros = await self.client.receiving(since - CURSOR_OVERLAP, page, LIST_LIMIT)
            for wro in wros:
                done = completed_at(wro)
                if done is not None and done > newest:
                    newest = done
                events.extend(receipt_events(wro, self.location, started))
            if len(wros) < LIST_LIMIT:
                break
            page += 1
        return PollResult(events, cursor=newest.isoformat(), complete_through=started)

    def authenticate(self, path_secret: str | None, headers: dict[str, str], body: bytes) -> bool:
        """Standard Webhooks signature check (see ThreePLWebhookReceiver)."""
        return self.webhooks.authenticate(path_secret, headers, body)

    def parse(self, headers: dict[str, str], body: bytes, now: datetime) -> list[Event]:
        """Shipment events of an `order.shipped` delivery (see ThreePLWebhookReceiver)."""
        return self.webhooks.parse(headers, body, now)

    def _check_open(self) -> None:
        if self._closed:
            raise Permanent("threepl: channel is closed")

    async def close(self) -> None:
        """Refuse further calls; the aiohttp session belongs to the daemon, which closes it."""
        self._closed = True


def create_channel(
    settings: ThreePLSettings, session: aiohttp.ClientSession, tokens: TokenStore | None
) -> ThreePLChannel:
    """The daemon's factory for the 3PL channel."""
    return ThreePLChannel(settings, session, tokens)
