"""Pure translations from SP-API bodies to syncd's normalized events and observations.

Order state mapping (Orders API 2026-01-01 `fulfillment.fulfillmentStatus`):

| Amazon               | syncd     | why                                                            |
|----------------------|-----------|----------------------------------------------------------------|
| PENDING              | pending   | placed, payment not authorized: Amazon holds the unit, so do we |
| PENDING_AVAILABILITY | pending   | pre-order, payment not authorized, release in the future       |
| UNSHIPPED            | paid      | payment authorized, waiting to ship: committed                 |
| PARTIALLY_SHIPPED    | paid      | the whole order stays committed until all of it is out: syncd  |
|                      |           | under-sells the shipped units for a while, never oversells     |
| SHIPPED              | shipped   | every unit has left                                            |
| CANCELLED            | cancelled | releases whatever it held                                      |
| UNFULFILLABLE        | cancelled | multi-channel fulfillment that cannot ship: nothing leaves     |

Pending orders carry no `hold_until`: Amazon itself keeps the unit until the order moves on to
Unshipped or Canceled, and the order poll sees that move.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from syncd.capture.events import (
    Event,
    ListingObservation,
    Notification,
    OrderLineIn,
    OrderUpsert,
    StockCount,
)
from syncd.channels.amazon.models import (
    InventorySummary,
    ListingsItem,
    MfnQuantityChange,
    Order,
    OrderChangeNotification,
    SpNotification,
)
from syncd.domain.models import OrderState

CHANNEL = "amazon"
MFN_CHANNEL_CODE = "DEFAULT"  # fulfillment_channel_code of merchant-fulfilled quantity
ORDER_CHANGE = "ORDER_CHANGE"
MFN_QUANTITY_CHANGE = "LISTINGS_ITEM_MFN_QUANTITY_CHANGE"

ORDER_STATES: dict[str, OrderState] = {
    "PENDING": OrderState.PENDING,
    "PENDING_AVAILABILITY": OrderState.PENDING,
    "UNSHIPPED": OrderState.PAID,
    "PARTIALLY_SHIPPED": OrderState.PAID,
    "SHIPPED": OrderState.SHIPPED,
    "CANCELLED": OrderState.CANCELLED,
    "UNFULFILLABLE": OrderState.CANCELLED,
}

# Currency of each marketplace's offers, for a price push on a listing that has no offer yet.
MARKETPLACE_CURRENCY: dict[str, str] = {
    "ATVPDKIKX0DER": "USD",
    "A2EUQ1WTGCTBG2": "CAD",
    "A1AM78C64UM0Y8": "MXN",
    "A2Q3Y263D00KWC": "BRL",
    "A1F83G8C2ARO7P": "GBP",
    "A1PA6795UKMFR9": "EUR",
    "A13V1IB3VIYZZH": "EUR",
    "APJ6JRA9NG5V4": "EUR",
    "A1RKKUPIHCS9HS": "EUR",
    "A1VC38T7YXB528": "JPY",
    "A39IBJ37TRP1C6": "AUD",
}


def parse_time(value: str) -> datetime:
    """An SP-API ISO-8601 timestamp as an aware UTC datetime; ValueError if it is not one."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a zone: {value!r}")
    return parsed.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """ISO-8601 in UTC with a `Z`, the way SP-API writes it (milliseconds when there are any)."""
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def order_state(fulfillment_status: str) -> OrderState:
    """Normalized state of an Orders 2026-01-01 `fulfillmentStatus`; ValueError if unknown."""
    try:
        return ORDER_STATES[fulfillment_status]
    except KeyError:
        raise ValueError(f"unknown Amazon fulfillmentStatus {fulfillment_status!r}") from None


def _decimal(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def order_upsert(order: Order) -> OrderUpsert | None:
    """The order as an `OrderUpsert`, or None when it has no line syncd can map.

    Lines are keyed by the seller SKU (syncd's Amazon listing external id). Needs the order read
    with `includedData=FULFILLMENT`: without it Amazon sends no status at all.
    """
    if order.fulfillment is None:
        raise ValueError(f"order {order.orderId} has no fulfillment data (includedData=FULFILLMENT)")
    state = order_state(order.fulfillment.fulfillmentStatus)
    lines = []
    for item in order.orderItems:
        sku = item.product.sellerSku
        qty = item.quantityOrdered
        if qty < 1 and state is OrderState.CANCELLED:
            # A cancelled line may report 0 ordered; the cancel releases whatever the line held,
            # which the core finds by line id, so the count here does not move stock.
            qty = 1
        if not sku or qty < 1:
            continue
        price = item.product.price.unitPrice if item.product.price else None
        lines.append(
            OrderLineIn(
                line_id=item.orderItemId,
                external_id=sku,
                qty=qty,
                unit_price=_decimal(price.amount) if price else None,
            )
        )
    if not lines:
        return None
    return OrderUpsert(
        channel=CHANNEL,
        order_id=order.orderId,
        state=state,
        last_updated=parse_time(order.lastUpdatedTime),
        created_at=parse_time(order.createdTime),
        lines=lines,
    )


def order_event(order: Order, received_at: datetime) -> Event | None:
    """`order_upsert` wrapped as an Event keyed by (order id, lastUpdatedTime)."""
    body = order_upsert(order)
    if body is None:
        return None
    key = f"{CHANNEL}:order:{order.orderId}:{format_time(body.last_updated)}"
    return Event(dedupe_key=key, source=CHANNEL, received_at=received_at, body=body)


def mfn_quantity(item: ListingsItem) -> int | None:
    """Merchant-fulfilled quantity of a listing; None when it has no DEFAULT channel (FBA only)."""
    for entry in item.fulfillmentAvailability:
        if entry.fulfillmentChannelCode == MFN_CHANNEL_CODE:
            return entry.quantity if entry.quantity is not None else 0
    for entry in item.attributes.get("fulfillment_availability") or []:
        if isinstance(entry, dict) and entry.get("fulfillment_channel_code") == MFN_CHANNEL_CODE:
            qty = entry.get("quantity")
            return qty if isinstance(qty, int) else 0
    return None


def is_fba_only(item: ListingsItem) -> bool:
    """True when Amazon fulfils the listing: its quantity is Amazon's, never ours to set."""
    codes = {entry.fulfillmentChannelCode for entry in item.fulfillmentAvailability}
    return bool(codes) and MFN_CHANNEL_CODE not in codes


def _offer_entries(item: ListingsItem) -> list[dict[str, Any]]:
    return [e for e in item.attributes.get("purchasable_offer") or [] if isinstance(e, dict)]


def offer_price(item: ListingsItem, marketplace_id: str) -> Decimal | None:
    """The current `our_price` of the listing's all-buyers offer in a marketplace."""
    for entry in _offer_entries(item):
        if entry.get("marketplace_id") != marketplace_id or entry.get("audience", "ALL") != "ALL":
            continue
        prices = [p for p in entry.get("our_price") or [] if isinstance(p, dict)]
        slots = [s for p in prices for s in p.get("schedule") or [] if isinstance(s, dict)]
        for slot in slots:
            amount = _decimal(str(slot.get("value_with_tax")))
            if amount is not None and amount.is_finite():
                return amount.quantize(Decimal("0.01"))
    return None


def offer_currency(item: ListingsItem | None, marketplace_id: str) -> str | None:
    """Currency of the listing's offer in a marketplace, else the marketplace's own currency."""
    if item is not None:
        for entry in _offer_entries(item):
            currency = entry.get("currency")
            if entry.get("marketplace_id") == marketplace_id and isinstance(currency, str):
                return currency
    return MARKETPLACE_CURRENCY.get(marketplace_id)


def product_type(item: ListingsItem, marketplace_ids: Sequence[str]) -> str | None:
    """The listing's product type, preferring a configured marketplace's summary."""
    by_market = {s.marketplaceId: s.productType for s in item.summaries}
    for market in marketplace_ids:
        if market in by_market:
            return by_market[market]
    return item.summaries[0].productType if item.summaries else None


def last_updated(item: ListingsItem) -> datetime | None:
    """Newest `lastUpdatedDate` across the listing's summaries."""
    times = [parse_time(s.lastUpdatedDate) for s in item.summaries if s.lastUpdatedDate]
    return max(times) if times else None


def listing_extra(item: ListingsItem, marketplace_ids: Sequence[str]) -> dict[str, str]:
    """Amazon-only facts about a listing kept beside an observation (ASIN, product type, status)."""
    extra: dict[str, str] = {}
    for summary in item.summaries:
        if summary.marketplaceId in marketplace_ids or not marketplace_ids:
            if summary.asin:
                extra["asin"] = summary.asin
            extra["product_type"] = summary.productType
            extra["summary_status"] = ",".join(summary.status)
            break
    channels = sorted(e.fulfillmentChannelCode for e in item.fulfillmentAvailability)
    if channels:
        extra["fulfillment_channels"] = ",".join(channels)
    return extra


def listing_observation_event(item: ListingsItem, marketplace_id: str, now: datetime) -> Event:
    """A listing from `searchListingsItems` as a ListingObservation event, keyed by its update time."""
    updated = last_updated(item) or now
    price = offer_price(item, marketplace_id)
    body = ListingObservation(
        channel=CHANNEL,
        external_id=item.sku,
        quantity=mfn_quantity(item),
        price=price,
        at=updated,
    )
    key = f"{CHANNEL}:listing:{item.sku}:{format_time(updated)}"
    return Event(dedupe_key=key, source=CHANNEL, received_at=now, body=body)


def stock_count_event(summary: InventorySummary, location: str, now: datetime) -> Event | None:
    """An FBA summary as a count of fulfillable units at `location`, as of its `lastUpdatedTime`."""
    details = summary.inventoryDetails
    if not summary.sellerSku or details is None or details.fulfillableQuantity is None:
        return None
    as_of = parse_time(summary.lastUpdatedTime) if summary.lastUpdatedTime else now
    body = StockCount(
        sku=summary.sellerSku,
        location=location,
        qty=max(0, details.fulfillableQuantity),
        as_of=as_of,
        source=CHANNEL,
    )
    key = f"{CHANNEL}:count:{summary.sellerSku}:{location}:{format_time(as_of)}"
    return Event(dedupe_key=key, source=CHANNEL, received_at=now, body=body)


def notification_events(
    notification: SpNotification, seller_id: str, now: datetime, raw: dict[str, Any] | None = None
) -> list[Event]:
    """Events for one SP-API notification; ValueError when it is malformed or not this seller's.

    ORDER_CHANGE becomes a pointer (`Notification`, resource = order id) that `fetch` resolves:
    its payload has v0-style statuses, no prices and no `lastUpdatedTime`, so the order itself
    is re-read. LISTINGS_ITEM_MFN_QUANTITY_CHANGE carries the whole fact and becomes an
    observation. Other types are acknowledged and produce nothing.
    """
    key = f"{CHANNEL}:notif:{notification.NotificationMetadata.NotificationId}"
    sent_at = parse_time(notification.EventTime)
    kind = notification.NotificationType
    if kind == ORDER_CHANGE:
        change = OrderChangeNotification.model_validate(
            notification.Payload.get("OrderChangeNotification") or {}
        )
        _check_seller(change.SellerId, seller_id)
        pointer = Notification(
            channel=CHANNEL, topic=ORDER_CHANGE, resource=change.AmazonOrderId, sent_at=sent_at
        )
        return [Event(dedupe_key=key, source=CHANNEL, received_at=now, body=pointer, raw=raw)]
    if kind == MFN_QUANTITY_CHANGE:
        qty = MfnQuantityChange.model_validate(notification.Payload)
        _check_seller(qty.SellerId, seller_id)
        if qty.FulfillmentChannelCode != MFN_CHANNEL_CODE:
            return []
        seen = ListingObservation(channel=CHANNEL, external_id=qty.Sku, quantity=qty.Quantity, at=sent_at)
        return [Event(dedupe_key=key, source=CHANNEL, received_at=now, body=seen, raw=raw)]
    return []


def _check_seller(found: str, expected: str) -> None:
    if expected and found != expected:
        raise ValueError("notification is for another selling partner")
