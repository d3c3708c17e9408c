"""Pure translations between MercadoLibre bodies and syncd's normalized events."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from syncd.capture.events import Event, ListingObservation, Notification, OrderLineIn, OrderUpsert
from syncd.channels.base import Permanent
from syncd.channels.mercadolibre.models import Item, NotificationBody, Order, Shipment
from syncd.domain.models import OrderState

CHANNEL = "mercadolibre"

# Order `status` → normalized state. Sources: APIS.md §2.4 list; the official Mercado Shops "Order
# status" table says `confirmed` is "order in initial status, but not yet paid", so it reserves
# like the other payment-pending states instead of committing as `paid` does.
ORDER_STATES: dict[str, OrderState] = {
    "confirmed": OrderState.PENDING,
    "payment_required": OrderState.PENDING,
    "payment_in_process": OrderState.PENDING,
    "partially_paid": OrderState.PENDING,
    "paid": OrderState.PAID,
    # A partial refund leaves the sale standing (some money went back, the goods did not).
    "partially_refunded": OrderState.PAID,
    # pending_cancel: cancelled, money on its way back to the buyer.
    "pending_cancel": OrderState.CANCELLED,
    "cancelled": OrderState.CANCELLED,
    "invalid": OrderState.CANCELLED,
}

# Shipment statuses after the parcel left the seller (`not_delivered` = returning to sender).
DISPATCHED = frozenset({"shipped", "delivered", "not_delivered"})

# Shipment statuses that never change again: no point asking twice.
SETTLED_SHIPMENTS = DISPATCHED | {"cancelled"}

# The `delivered` order tag means the same without a shipment lookup (`not_delivered` does not).
DELIVERED_TAG = "delivered"

OUT_OF_STOCK = "out_of_stock"


def order_state(status: str, tags: list[str], shipment_status: str | None) -> OrderState:
    """Normalized state of an order; raises ValueError for a status ML has not documented."""
    try:
        state = ORDER_STATES[status]
    except KeyError:
        raise ValueError(f"unknown MercadoLibre order status {status!r}") from None
    if state is OrderState.PAID and (DELIVERED_TAG in tags or shipment_status in DISPATCHED):
        return OrderState.SHIPPED
    return state


def needs_shipment(order: Order) -> bool:
    """True when only `/shipments/{id}` can tell paid from shipped for this order."""
    return (
        ORDER_STATES.get(order.status) is OrderState.PAID
        and DELIVERED_TAG not in order.tags
        and order.shipping is not None
        and order.shipping.id is not None
    )


def order_event(order: Order, shipment: Shipment | None, now: datetime) -> Event:
    """The OrderUpsert for an order (and its shipment, when it was looked up)."""
    state = order_state(order.status, order.tags, shipment.status if shipment else None)
    # Dispatch changes the shipment, not always the order: order by whichever moved last.
    updated = order.last_updated
    if shipment is not None and shipment.last_updated is not None and shipment.last_updated > updated:
        updated = shipment.last_updated
    lines = [
        OrderLineIn(
            line_id=f"{line.item.id}:{line.item.variation_id or '-'}:{n}",
            external_id=line.item.id,
            variation_id=str(line.item.variation_id) if line.item.variation_id is not None else None,
            qty=line.quantity,
            unit_price=line.unit_price,
        )
        for n, line in enumerate(order.order_items)
    ]
    body = OrderUpsert(
        channel=CHANNEL,
        order_id=str(order.id),
        state=state,
        last_updated=updated,
        created_at=order.date_created,
        lines=lines,
    )
    key = f"{CHANNEL}:order:{order.id}:{iso(updated)}:{state.value}"
    return Event(dedupe_key=key, source=CHANNEL, received_at=now, body=body)


def listing_status(status: str, sub_status: list[str]) -> tuple[str, str]:
    """(status as the seller asked for it, who paused it: "seller", "mercadolibre" or "").

    ML pauses an item itself when its stock reaches 0 (sub-status `out_of_stock`) and re-activates
    it on restock; the seller still wants it selling, so that pause reads as "active".
    """
    if status == "paused":
        if OUT_OF_STOCK in sub_status:
            return "active", "mercadolibre"
        return "paused", "seller"
    return status, ""


@dataclass(frozen=True, slots=True)
class ListingView:
    """One sellable unit of an item (a variation, or the item itself) as syncd sees it."""

    external_id: str
    variation_id: str | None
    quantity: int | None
    price: Decimal | None
    status: str
    ml_status: str
    paused_by: str
    sub_status: tuple[str, ...]


def listing_views(item: Item) -> list[ListingView]:
    """One view per variation, or one for an item without variations."""
    status, paused_by = listing_status(item.status, item.sub_status)
    subs = tuple(item.sub_status)
    if not item.variations:
        return [ListingView(item.id, None, item.available_quantity, item.price, status, item.status, paused_by, subs)]
    return [
        ListingView(
            item.id,
            str(v.id),
            v.available_quantity,
            v.price if v.price is not None else item.price,
            status,
            item.status,
            paused_by,
            subs,
        )
        for v in item.variations
    ]


def observation_events(item: Item, now: datetime) -> list[Event]:
    """ListingObservation events for every sellable unit of an item."""
    at = item.last_updated or now
    events = []
    for view in listing_views(item):
        body = ListingObservation(
            channel=CHANNEL,
            external_id=view.external_id,
            variation_id=view.variation_id,
            quantity=view.quantity,
            price=view.price,
            status=view.status,
            at=at,
        )
        key = f"{CHANNEL}:listing:{view.external_id}:{view.variation_id or '-'}:{iso(at)}"
        events.append(Event(dedupe_key=key, source=CHANNEL, received_at=now, body=body))
    return events


def notification_dedupe_key(note: NotificationBody, raw: dict[str, Any]) -> str:
    """Same change delivered twice → same key; a later change of the same resource → a new key.

    `received` is when ML registered the change: it stays fixed across retries (only `attempts` and
    `sent` move) and is the same in `/missed_feeds`, while a later change gets a later `received`.
    `_id` is absent from some topics and from `/missed_feeds` data, so it is only a fallback.
    """
    if note.received is not None:
        return f"{CHANNEL}:notif:{note.topic}:{note.resource}:{iso(note.received)}"
    if note.id:
        return f"{CHANNEL}:notif:id:{note.id}"
    stable = {k: v for k, v in raw.items() if k not in ("attempts", "sent")}
    digest = hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return f"{CHANNEL}:notif:sha:{digest}"


def notification_event(note: NotificationBody, raw: dict[str, Any], now: datetime) -> Event:
    """The stored pointer; the daemon resolves it later through `fetch(topic, resource)`."""
    body = Notification(channel=CHANNEL, topic=note.topic, resource=note.resource, sent_at=note.sent)
    return Event(dedupe_key=notification_dedupe_key(note, raw), source=CHANNEL, received_at=now, body=body, raw=raw)


def parse_cursor(cursor: str | None) -> datetime | None:
    """A poll cursor (ISO-8601; naive means UTC) as an aware datetime; Permanent when unreadable."""
    if not cursor:
        return None
    try:
        parsed = datetime.fromisoformat(cursor)
    except ValueError:
        raise Permanent(f"mercadolibre: unreadable poll cursor {cursor!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(when: datetime) -> str:
    """UTC ISO-8601 with milliseconds, the form used in keys and cursors."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


def decimal_text(value: Decimal) -> str:
    """Canonical text of an amount: `250`, `12.5` (whatever float form the JSON had)."""
    text = format(value.normalize(), "f")
    return text


def price_number(value: Decimal) -> int | float:
    """A JSON number for a price (ML takes numbers, not strings)."""
    return int(value) if value == value.to_integral_value() else float(value)
