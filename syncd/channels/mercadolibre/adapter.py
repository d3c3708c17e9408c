"""The MercadoLibre channel: pushes, read-back, polls, webhook intake and fetch-on-notify."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import aiohttp
import structlog
from pydantic import BaseModel, ValidationError

from syncd.capture.events import Event, OrderUpsert
from syncd.channels.base import ListingRef, Observation, Permanent, PollResult, TokenStore
from syncd.channels.mercadolibre.auth import MercadoLibreAuth
from syncd.channels.mercadolibre.client import MercadoLibreClient
from syncd.channels.mercadolibre.feeds import MissedFeeds
from syncd.channels.mercadolibre.mapping import (
    ORDER_STATES,
    decimal_text,
    iso,
    listing_views,
    needs_shipment,
    observation_events,
    order_event,
    parse_cursor,
    price_number,
)
from syncd.channels.mercadolibre.models import (
    Item,
    ItemsSearchPage,
    ItemVariations,
    MultigetEntry,
    Order,
    OrdersPage,
    Shipment,
)
from syncd.channels.mercadolibre.shipments import ShipmentMemo
from syncd.channels.mercadolibre.webhook import MercadoLibreWebhook
from syncd.config import MercadoLibreSettings
from syncd.domain.models import Field

log = structlog.get_logger(__name__)
_M = TypeVar("_M", bound=BaseModel)

_ITEM_ID = re.compile(r"^[A-Z]{3}\d{1,20}$")
# Resources come from unauthenticated bodies: only these exact shapes are ever requested.
_ORDER_RES = re.compile(r"^/orders/(\d{1,20})$")
_ITEM_RES = re.compile(r"^/items/([A-Z]{3}\d{1,20})$")
_SHIPMENT_RES = re.compile(r"^/shipments/(\d{1,20})$")
_UP_RES = re.compile(r"^/user-products/([A-Z]{3}U\d{1,20})/stock$")

_ALL_ORDER_STATUSES = ",".join(ORDER_STATES)
ORDERS_PAGE = 50  # clients stay at or under 50 (no documented maximum)
ORDERS_OVERLAP = timedelta(minutes=5)  # re-read a little behind the watermark (late-visible updates)
INITIAL_LOOKBACK = timedelta(days=14)  # first orders poll without a cursor
MAX_ORDER_OFFSET = 10_000  # /orders/search offset ceiling
MULTIGET_MAX = 20
ITEM_ATTRIBUTES = "id,price,available_quantity,status,sub_status,variations,last_updated"
SEARCH_PAGE = 100
SEARCH_OFFSET_LIMIT = 1000  # beyond this, /users/{id}/items/search needs search_type=scan


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _read(model: type[_M], raw: Any) -> _M:
    """Validate an API body; a shape we cannot read is a Permanent error, never a crash."""
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        where = ", ".join(".".join(str(p) for p in e["loc"]) for e in err.errors()[:3])
        raise Permanent(f"mercadolibre: unexpected {model.__name__} body ({where})") from None


class MercadoLibreChannel:
    """Channel, WebhookReceiver and Fetcher for one MercadoLibre seller account."""

    name = "mercadolibre"

    def __init__(
        self,
        settings: MercadoLibreSettings,
        session: aiohttp.ClientSession,
        tokens: TokenStore,
        *,
        clock: Callable[[], datetime] = _utcnow,
        refresh_margin_seconds: float = 300.0,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.auth = MercadoLibreAuth(settings, session, tokens, clock, refresh_margin_seconds)
        self.client = MercadoLibreClient(settings, session, self.auth)
        self.http = self.client.http  # the daemon reads `http.stats` for /metrics
        self.webhook = MercadoLibreWebhook(settings)
        self.missed_feeds = MissedFeeds(settings, self.client, clock)
        self.shipments = ShipmentMemo()

    @property
    def poll_resources(self) -> dict[str, float]:
        """Poll resources and their intervals: the orders backstop, lost-notification recovery, read-back."""
        return {
            "orders": self.settings.orders_poll_seconds,
            "missed_feeds": self.settings.orders_poll_seconds,
            "listings": self.settings.listings_poll_seconds,
        }

    # ----- Channel ---------------------------------------------------------------------------

    async def push(self, ref: ListingRef, field: Field, value: str) -> None:
        """Set quantity, price or status of one listing (variation-aware) with `PUT /items/{id}`."""
        path = f"/items/{self._item_id(ref.external_id)}"
        if field is Field.QUANTITY:
            body = await self._quantity_body(ref, value)
        elif field is Field.PRICE:
            try:
                price = Decimal(value)
            except InvalidOperation:
                raise Permanent(f"mercadolibre: invalid price {value!r}") from None
            if not price.is_finite() or price <= 0:
                raise Permanent(f"mercadolibre: invalid price {value!r}")
            # Legacy listings share one price across variations, so the price is set on the item.
            body = {"price": price_number(price)}
        elif field is Field.STATUS:
            if value not in ("active", "paused"):
                raise Permanent(f"mercadolibre: unsupported status {value!r}")
            body = {"status": value}
        else:
            raise Permanent(f"mercadolibre: cannot push field {field}")
        answer = await self.client.put("items_put", path, body)
        warnings = answer.get("warnings") if isinstance(answer, dict) else None
        if field is Field.PRICE and warnings:
            # 200, but the price was ignored: an active price automation owns it.
            raise Permanent(f"mercadolibre: price not applied to {ref.external_id}: {str(warnings)[:200]}")

    async def _quantity_body(self, ref: ListingRef, value: str) -> dict[str, Any]:
        try:
            qty = int(value)
        except ValueError:
            raise Permanent(f"mercadolibre: invalid quantity {value!r}") from None
        if qty < 0:
            raise Permanent(f"mercadolibre: invalid quantity {qty}")
        if ref.variation_id is None:
            return {"available_quantity": qty}
        # A variation left out of the array is deleted (and loses its sales history), so every
        # current variation id goes in; only the target carries a quantity.
        raw = await self.client.get("items_get", f"/items/{ref.external_id}", {"attributes": "id,variations"})
        ids = [str(v.id) for v in _read(ItemVariations, raw).variations]
        if ref.variation_id not in ids:
            raise Permanent(f"mercadolibre: variation {ref.variation_id} is not on item {ref.external_id}")
        return {
            "variations": [
                {"id": int(v), "available_quantity": qty} if v == ref.variation_id else {"id": int(v)} for v in ids
            ]
        }

    async def read_listings(self, refs: Sequence[ListingRef]) -> list[Observation]:
        """Read back quantity, price and status per listing through multiget (20 ids a call)."""
        # An id that cannot be an ML item id is reported missing instead of failing the whole batch.
        items = await self._multiget(list(dict.fromkeys(r.external_id for r in refs if _ITEM_ID.match(r.external_id))))
        observations = []
        for ref in refs:
            item = items.get(ref.external_id)
            view = None
            if item is not None:
                view = next((v for v in listing_views(item) if v.variation_id == ref.variation_id), None)
            if view is None:
                observations.append(Observation(ref, None, status="not_found"))
                continue
            extra = {"ml_status": view.ml_status, "paused_by": view.paused_by, "sub_status": ",".join(view.sub_status)}
            price = decimal_text(view.price) if view.price is not None else None
            observations.append(Observation(ref, view.quantity, price, view.status, extra))
        return observations

    async def _multiget(self, ids: list[str]) -> dict[str, Item]:
        found: dict[str, Item] = {}
        for start in range(0, len(ids), MULTIGET_MAX):
            chunk = ids[start : start + MULTIGET_MAX]
            raw = await self.client.get(
                "items_multiget", "/items", {"ids": ",".join(chunk), "attributes": ITEM_ATTRIBUTES}
            )
            if not isinstance(raw, list):
                raise Permanent("mercadolibre items_multiget: expected a list")
            for entry in raw:
                parsed = _read(MultigetEntry, entry)
                if parsed.code == 200:
                    item = _read(Item, parsed.body)
                    found[item.id] = item
        return found

    async def poll(self, resource: str, cursor: str | None) -> PollResult:
        """`orders` (search backstop), `missed_feeds` (lost notifications), `listings` (full read-back)."""
        if resource == "orders":
            return await self._poll_orders(cursor)
        if resource == "missed_feeds":
            return await self.missed_feeds.poll(cursor)
        if resource == "listings":
            return await self._poll_listings()
        raise Permanent(f"mercadolibre: unknown poll resource {resource!r}")

    async def close(self) -> None:
        """Stop accepting calls (the aiohttp session belongs to the daemon and is closed there)."""
        self.client.closed = True

    # ----- polls -----------------------------------------------------------------------------

    async def _poll_orders(self, cursor: str | None) -> PollResult:
        started = self.clock()
        watermark = parse_cursor(cursor) or started - INITIAL_LOOKBACK
        params: dict[str, Any] = {
            "seller": self.settings.user_id,
            "order.date_last_updated.from": (watermark - ORDERS_OVERLAP).isoformat(timespec="milliseconds"),
            # Cancelled orders may be left out unless asked for by status.
            "order.status": _ALL_ORDER_STATUSES,
            "sort": "date_asc",  # creation order: offsets stay stable while orders get updated
            "limit": ORDERS_PAGE,
        }
        events: list[Event] = []
        newest = watermark
        offset = 0
        while offset <= MAX_ORDER_OFFSET:
            page = _read(
                OrdersPage, await self.client.get("orders_search", "/orders/search", {**params, "offset": offset})
            )
            for raw in page.results:
                event = await self._order_from_raw(raw)
                if event is not None and isinstance(event.body, OrderUpsert):
                    events.append(event)
                    newest = max(newest, event.body.last_updated)
            offset += len(page.results)
            if not page.results or offset >= page.paging.total:
                break
        else:
            log.warning("mercadolibre.orders_poll_truncated", offset=offset)
        settled = started - ORDERS_OVERLAP
        # The search saw every order updated before it ran; the overlap only makes the next poll
        # re-read a margin (dedupe keys make repeats free), it is no doubt about this one.
        return PollResult(events, iso(max(newest, settled)), complete_through=started)

    async def _order_from_raw(self, raw: dict[str, Any]) -> Event | None:
        # One odd order must not stall the backstop for every other one: skip it loudly.
        try:
            return await self._order_event(_read(Order, raw), recall=True)
        except Permanent as err:
            log.error("mercadolibre.order_skipped", order_id=str(raw.get("id"))[:20], error=str(err)[:200])
            return None

    async def _order_event(self, order: Order, *, recall: bool = False, shipment: Shipment | None = None) -> Event:
        """The order's event; the shipment is read only when the order alone cannot tell paid from shipped.

        `recall` (the backstop) reuses the shipment already read for this same order version;
        `shipment` is one the caller has just read.
        """
        if not needs_shipment(order):
            shipment = None
        elif shipment is not None:
            self.shipments.remember(order, shipment, self.clock())
        else:
            shipment = self.shipments.recall(order, self.clock()) if recall else None
            if shipment is None:
                assert order.shipping is not None
                asked = self.clock()
                raw = await self.client.get(
                    "shipments_get", f"/shipments/{order.shipping.id}", headers={"x-format-new": "true"}
                )
                shipment = _read(Shipment, raw)
                self.shipments.remember(order, shipment, asked)
        try:
            return order_event(order, shipment, self.clock())
        except ValueError as err:
            raise Permanent(f"mercadolibre: order {order.id}: {err}") from None

    async def _poll_listings(self) -> PollResult:
        started = self.clock()
        ids = await self._all_item_ids()
        items = await self._multiget(ids)
        events = [event for item in items.values() for event in observation_events(item, started)]
        return PollResult(events, None, complete_through=started)

    async def _all_item_ids(self) -> list[str]:
        path = f"/users/{self.settings.user_id}/items/search"
        ids: list[str] = []
        offset = 0
        while True:
            page = _read(
                ItemsSearchPage, await self.client.get("items_search", path, {"offset": offset, "limit": SEARCH_PAGE})
            )
            if page.paging.total > SEARCH_OFFSET_LIMIT:
                return await self._scan_item_ids(path)
            ids.extend(page.results)
            offset += len(page.results)
            if not page.results or offset >= page.paging.total:
                return ids

    async def _scan_item_ids(self, path: str) -> list[str]:
        # One scroll at a time, without pauses: the scroll id lives 5 minutes.
        params: dict[str, Any] = {"search_type": "scan", "limit": SEARCH_PAGE}
        ids: list[str] = []
        while True:
            page = _read(ItemsSearchPage, await self.client.get("items_search", path, params))
            if not page.results or page.scroll_id is None:
                return ids
            ids.extend(page.results)
            params = {"search_type": "scan", "limit": SEARCH_PAGE, "scroll_id": page.scroll_id}

    # ----- WebhookReceiver -------------------------------------------------------------------

    def authenticate(self, path_secret: str | None, headers: dict[str, str], body: bytes) -> bool:
        """True when the callback path carries our webhook secret."""
        return self.webhook.authenticate(path_secret, headers, body)

    def parse(self, headers: dict[str, str], body: bytes, now: datetime) -> list[Event]:
        """Notification events for a delivery; ValueError when malformed or not for this account."""
        return self.webhook.parse(headers, body, now)

    # ----- Fetcher ---------------------------------------------------------------------------

    async def fetch(self, topic: str, resource: str) -> list[Event]:
        """Resolve a pointer: GET the resource with our token and normalize what it says now."""
        if topic in ("orders_v2", "orders") and _ORDER_RES.match(resource):
            return [await self._order_event(_read(Order, await self.client.get("orders_get", resource)))]
        if topic == "items" and _ITEM_RES.match(resource):
            raw = await self.client.get("items_get", resource, {"attributes": ITEM_ATTRIBUTES})
            return observation_events(_read(Item, raw), self.clock())
        if topic == "shipments" and _SHIPMENT_RES.match(resource):
            raw = await self.client.get("shipments_get", resource, headers={"x-format-new": "true"})
            shipment = _read(Shipment, raw)
            if shipment.order_id is None:
                return []
            order = _read(Order, await self.client.get("orders_get", f"/orders/{shipment.order_id}"))
            return [await self._order_event(order, shipment=shipment)]
        if topic in ("stock-locations", "stock-location") and (m := _UP_RES.match(resource)):
            # A UP stock change: find the seller's items of that user product and read them back.
            path = f"/users/{self.settings.user_id}/items/search"
            page = _read(ItemsSearchPage, await self.client.get("items_search", path, {"user_product_id": m.group(1)}))
            items = await self._multiget(page.results)
            now = self.clock()
            return [event for item in items.values() for event in observation_events(item, now)]
        raise Permanent(f"mercadolibre: cannot fetch topic {topic!r} resource {resource[:100]!r}")

    def _item_id(self, external_id: str) -> str:
        if not _ITEM_ID.match(external_id):
            raise Permanent(f"mercadolibre: invalid item id {external_id[:40]!r}")
        return external_id


def create_channel(
    settings: MercadoLibreSettings, session: aiohttp.ClientSession, tokens: TokenStore
) -> MercadoLibreChannel:
    """The MercadoLibre adapter for the daemon's composition root."""
    return MercadoLibreChannel(settings, session, tokens)
