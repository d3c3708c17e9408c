"""The Amazon channel: push, read back, poll, resolve pointers, receive webhooks.

Pausing: Amazon has no pause switch for an offer that keeps it intact (deleting the listing
loses its attributes), so a merchant-fulfilled listing stops selling at quantity 0, as
Seller Central's "close listing" does. `push(status, "paused")` sets quantity 0;
`push(status, "active")` checks the listing still exists, and the core's next quantity push
(target > 0 once resumed) puts it back on sale.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp
import structlog

from syncd.capture.events import Event
from syncd.channels.amazon import webhook
from syncd.channels.amazon.auth import utcnow
from syncd.channels.amazon.client import SpApiClient
from syncd.channels.amazon.mapping import (
    MFN_CHANNEL_CODE,
    ORDER_CHANGE,
    format_time,
    is_fba_only,
    listing_extra,
    listing_observation_event,
    mfn_quantity,
    offer_currency,
    offer_price,
    order_event,
    parse_time,
    product_type,
    stock_count_event,
)
from syncd.channels.amazon.models import ListingsItem
from syncd.channels.base import ListingRef, Observation, Permanent, PollResult, TokenStore
from syncd.config import AmazonSettings
from syncd.domain.models import Field, ListingStatus

log = structlog.get_logger(__name__)

POLL_RESOURCES = ("orders", "fba_stock", "listings")


class AmazonChannel:
    """SP-API adapter: Channel, WebhookReceiver and Fetcher for one seller account."""

    name = "amazon"

    def __init__(
        self,
        settings: AmazonSettings,
        session: aiohttp.ClientSession,
        tokens: TokenStore | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        overlap: timedelta = timedelta(minutes=5),
        initial_lookback: timedelta = timedelta(days=1),
        orders_page_size: int = 100,
    ) -> None:
        if not settings.marketplace_ids:
            raise Permanent("amazon: marketplace_ids is empty")
        self.settings = settings
        self.client = SpApiClient(settings, session, tokens, clock)
        self._clock = clock
        # Polls re-read this much before their cursor: Amazon's indexes are eventually consistent.
        self.overlap = overlap
        self.initial_lookback = initial_lookback
        self.orders_page_size = orders_page_size
        self._listings: dict[str, ListingsItem] = {}

    # --- Channel ---------------------------------------------------------------------------------

    async def push(self, ref: ListingRef, field: Field, value: str) -> None:
        """Set quantity, price or status of one merchant-fulfilled listing (keyed by seller SKU)."""
        sku = ref.external_id
        if field is Field.QUANTITY:
            await self._patch(sku, [self._quantity_patch(_quantity(value))])
        elif field is Field.PRICE:
            item = await self._listing(sku)
            await self._patch(sku, [self._price_patch(item, _price(value))])
        elif field is Field.STATUS:
            if value == ListingStatus.PAUSED:
                await self._patch(sku, [self._quantity_patch(0)])
            elif value == ListingStatus.ACTIVE:
                self._listings.pop(sku, None)
                await self._listing(sku)
            else:
                raise Permanent(f"amazon: unknown listing status {value!r}")
        else:
            raise Permanent(f"amazon: cannot push {field}")

    async def read_listings(self, refs: Sequence[ListingRef]) -> list[Observation]:
        """Read each listing back with `getListingsItem`; a SKU Amazon does not know reads as None."""
        return list(await asyncio.gather(*(self._observe(ref) for ref in refs)))

    async def poll(self, resource: str, cursor: str | None) -> PollResult:
        """Poll "orders" (searchOrders), "fba_stock" (getInventorySummaries) or "listings"."""
        if resource == "orders":
            return await self._poll_orders(cursor)
        if resource == "fba_stock":
            return await self._poll_fba(cursor)
        if resource == "listings":
            return await self._poll_listings(cursor)
        raise Permanent(f"amazon: unknown poll resource {resource!r} (have {', '.join(POLL_RESOURCES)})")

    @property
    def poll_resources(self) -> tuple[str, ...]:
        """Resources worth polling here: fba_stock only when an FBA location is configured."""
        return tuple(r for r in POLL_RESOURCES if r != "fba_stock" or self.settings.fba_location)

    def poll_intervals(self) -> dict[str, float]:
        """Seconds between polls of each resource, from the settings.

        Orders are polled no more often than searchOrders' plan sustains (one call per
        1 / 0.0056 s ≈ 3 min); faster polls would only wait on the limiter once the burst is
        spent. Pushes (webhook, SQS) carry the latency; the poll is the backstop.
        """
        cfg = self.settings
        sustained = 1.0 / self.client.rates["searchOrders"]
        plan = {"orders": max(cfg.orders_poll_seconds, sustained), "listings": cfg.listings_poll_seconds}
        if cfg.fba_location:
            plan["fba_stock"] = cfg.stock_poll_seconds
        return plan

    async def close(self) -> None:
        """Forget cached listings and the access token; the session belongs to the caller."""
        self._listings.clear()
        self.client.auth.forget()

    # --- Fetcher ---------------------------------------------------------------------------------

    async def fetch(self, topic: str, resource: str) -> list[Event]:
        """Resolve an ORDER_CHANGE pointer by reading the order (`getOrder`, with fulfillment)."""
        if topic != ORDER_CHANGE:
            raise Permanent(f"amazon: cannot fetch topic {topic!r}")
        reply = await self.client.get_order(resource)
        event = order_event(reply.order, self._clock())
        return [event] if event is not None else []

    # --- WebhookReceiver -------------------------------------------------------------------------

    def authenticate(self, path_secret: str | None, headers: dict[str, str], body: bytes) -> bool:
        """Constant-time check of the `x-syncd-webhook-secret` header EventBridge sends."""
        return webhook.authenticate(self.settings.webhook_secret.get_secret_value(), headers)

    def parse(self, headers: dict[str, str], body: bytes, now: datetime) -> list[Event]:
        """Events from one EventBridge delivery; ValueError with a reason when malformed."""
        return webhook.parse(body, self.settings.seller_id, now)

    # --- listings --------------------------------------------------------------------------------

    async def _listing(self, sku: str) -> ListingsItem:
        item = self._listings.get(sku)
        if item is None:
            item = await self.client.get_listing(sku)
            self._listings[sku] = item
        return item

    def _quantity_patch(self, qty: int) -> dict[str, Any]:
        # `merge` keeps the seller's handling time and restock date; `replace` would drop them.
        value = [{"fulfillment_channel_code": MFN_CHANNEL_CODE, "quantity": qty}]
        return {"op": "merge", "path": "/attributes/fulfillment_availability", "value": value}

    def _price_patch(self, item: ListingsItem, price: Decimal) -> dict[str, Any]:
        offers = []
        for market in self.settings.marketplace_ids:
            currency = offer_currency(item, market)
            if currency is None:
                raise Permanent(f"amazon: no currency known for marketplace {market}")
            schedule = [{"value_with_tax": float(price)}]
            offers.append(
                {
                    "marketplace_id": market,
                    "currency": currency,
                    "audience": "ALL",
                    "our_price": [{"schedule": schedule}],
                }
            )
        return {"op": "replace", "path": "/attributes/purchasable_offer", "value": offers}

    async def _patch(self, sku: str, patches: list[dict[str, Any]]) -> None:
        item = await self._listing(sku)
        kind = product_type(item, self.settings.marketplace_ids)
        if kind is None:
            raise Permanent(f"amazon: listing {sku} has no product type in its summaries")
        touches_quantity = any(p["path"] == "/attributes/fulfillment_availability" for p in patches)
        if touches_quantity and is_fba_only(item):
            # A DEFAULT quantity on an FBA listing would turn it merchant-fulfilled.
            raise Permanent(f"amazon: listing {sku} is fulfilled by Amazon; its quantity is not ours to set")
        reply = await self.client.patch_listing(sku, kind, patches)
        if reply.status != "ACCEPTED":
            # The product type or attributes may have changed on Amazon's side: re-read next time.
            self._listings.pop(sku, None)
            issues = "; ".join(f"{i.code} {i.message}" for i in reply.issues if i.severity == "ERROR")
            raise Permanent(f"amazon: patch of {sku} {reply.status}: {issues or 'no issue given'}")
        log.debug("amazon.patch.accepted", sku=sku, submission=reply.submissionId)

    async def _observe(self, ref: ListingRef) -> Observation:
        try:
            item = await self.client.get_listing(ref.external_id)
        except Permanent as err:
            # HttpClient names the status in its message ("amazon getListingsItem: 404 ...").
            if ": 404 " not in str(err):
                raise
            return Observation(ref=ref, quantity=None, extra={"missing": "true"})
        self._listings[ref.external_id] = item
        market = self.settings.marketplace_ids[0]
        price = offer_price(item, market)
        return Observation(
            ref=ref,
            quantity=mfn_quantity(item),
            price=str(price) if price is not None else None,
            extra=listing_extra(item, self.settings.marketplace_ids),
        )

    # --- polls -----------------------------------------------------------------------------------

    def _since(self, cursor: str | None) -> datetime:
        if cursor is None:
            return self._clock() - self.initial_lookback
        return parse_time(cursor) - self.overlap

    async def _poll_orders(self, cursor: str | None) -> PollResult:
        base = {
            "lastUpdatedAfter": format_time(self._since(cursor)),
            "marketplaceIds": ",".join(self.settings.marketplace_ids),
            "includedData": "FULFILLMENT",
            "maxResultsPerPage": str(self.orders_page_size),
        }
        events: list[Event] = []
        newest = parse_time(cursor) if cursor else None
        bound: datetime | None = None
        token: str | None = None
        while True:
            # Every page resends the same filters; only the token changes.
            params = dict(base, paginationToken=token) if token else base
            page = await self.client.search_orders(params)
            now = self._clock()
            for order in page.orders:
                event = order_event(order, now)
                if event is not None:
                    events.append(event)
                updated = parse_time(order.lastUpdatedTime)
                newest = updated if newest is None or updated > newest else newest
            if page.lastUpdatedBefore:
                bound = parse_time(page.lastUpdatedBefore)
            token = page.pagination.nextToken if page.pagination else None
            if not token:
                break
        # Amazon echoes the upper bound it searched to: everything updated before it was seen.
        through = bound or newest
        return PollResult(
            events=events, cursor=format_time(through) if through else cursor, complete_through=through
        )

    async def _poll_fba(self, cursor: str | None) -> PollResult:
        location = self.settings.fba_location
        if not location:
            raise Permanent("amazon: fba_location is not configured; cannot poll fba_stock")
        started = self._clock()
        since = {"startDateTime": format_time(parse_time(cursor) - self.overlap)} if cursor else {}
        events: list[Event] = []
        token: str | None = None
        while True:
            # With startDateTime, Amazon wants it resent alongside nextToken.
            params = dict(since, nextToken=token) if token else since
            page = await self.client.inventory_summaries(params)
            now = self._clock()
            for summary in page.payload.inventorySummaries:
                event = stock_count_event(summary, location, now)
                if event is not None:
                    events.append(event)
            token = page.pagination.nextToken if page.pagination else None
            if not token:
                break
        return PollResult(events=events, cursor=format_time(started), complete_through=started)

    async def _poll_listings(self, cursor: str | None) -> PollResult:
        started = self._clock()
        base = {
            "includedData": "summaries,attributes,fulfillmentAvailability",
            "sortBy": "lastUpdatedDate",
            "sortOrder": "ASC",
            "pageSize": "20",
        }
        if cursor:
            base["lastUpdatedAfter"] = format_time(parse_time(cursor) - self.overlap)
        events: list[Event] = []
        market = self.settings.marketplace_ids[0]
        token: str | None = None
        while True:
            params = dict(base, pageToken=token) if token else base
            page = await self.client.search_listings(params)
            now = self._clock()
            for item in page.items:
                events.append(listing_observation_event(item, market, now))
            token = page.pagination.nextToken if page.pagination else None
            if not token:
                break
        return PollResult(events=events, cursor=format_time(started), complete_through=started)


def _quantity(value: str) -> int:
    try:
        qty = int(value)
    except ValueError:
        raise Permanent(f"amazon: quantity must be a whole number, got {value!r}") from None
    if qty < 0:
        raise Permanent(f"amazon: quantity must not be negative, got {qty}")
    return qty


def _price(value: str) -> Decimal:
    try:
        price = Decimal(value)
    except InvalidOperation:
        raise Permanent(f"amazon: price must be a decimal, got {value!r}") from None
    if not price.is_finite() or price <= 0:
        raise Permanent(f"amazon: price must be positive, got {value!r}")
    return price.quantize(Decimal("0.01"))


def create_channel(
    settings: AmazonSettings, session: aiohttp.ClientSession, tokens: TokenStore | None = None
) -> AmazonChannel:
    """The Amazon adapter for one seller account, sharing the daemon's HTTP session."""
    return AmazonChannel(settings, session, tokens)
