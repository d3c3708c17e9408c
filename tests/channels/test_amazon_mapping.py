"""Pure translations of SP-API bodies into syncd events (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from syncd.capture.events import ListingObservation, Notification, OrderUpsert, StockCount
from syncd.channels.amazon.client import USAGE_PLANS, limiter_limits
from syncd.channels.amazon.mapping import (
    format_time,
    is_fba_only,
    mfn_quantity,
    notification_events,
    offer_price,
    order_event,
    order_state,
    parse_time,
    stock_count_event,
)
from syncd.channels.amazon.models import InventorySummary, ListingsItem, Order, SpNotification
from syncd.domain.models import OrderState

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SELLER = "A3TH9S8BH6GOGM"


def _order(status: str | None, items: list[dict[str, Any]] | None = None) -> Order:
    body: dict[str, Any] = {
        "orderId": "123-4567890-1234567",
        "createdTime": "2026-03-01T10:00:00Z",
        "lastUpdatedTime": "2026-03-01T11:30:00.250Z",
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": "ATVPDKIKX0DER"},
        "orderItems": items
        if items is not None
        else [
            {
                "orderItemId": "OI-1",
                "quantityOrdered": 2,
                "product": {
                    "sellerSku": "SKU-1",
                    "price": {"unitPrice": {"amount": "10.50", "currencyCode": "USD"}},
                },
            }
        ],
    }
    if status is not None:
        body["fulfillment"] = {"fulfillmentStatus": status, "fulfilledBy": "MERCHANT"}
    return Order.model_validate(body)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("PENDING", OrderState.PENDING),
        ("PENDING_AVAILABILITY", OrderState.PENDING),
        ("UNSHIPPED", OrderState.PAID),
        ("PARTIALLY_SHIPPED", OrderState.PAID),
        ("SHIPPED", OrderState.SHIPPED),
        ("CANCELLED", OrderState.CANCELLED),
        ("UNFULFILLABLE", OrderState.CANCELLED),
    ],
)
def test_every_fulfillment_status_maps_to_one_order_state(status: str, state: OrderState) -> None:
    assert order_state(status) is state


def test_unknown_fulfillment_status_is_refused() -> None:
    with pytest.raises(ValueError, match="Canceled"):
        order_state("Canceled")  # v0 spelling is not a 2026-01-01 status


def test_order_becomes_upsert_keyed_by_seller_sku_and_last_updated() -> None:
    event = order_event(_order("UNSHIPPED"), NOW)
    assert event is not None
    assert event.dedupe_key == "amazon:order:123-4567890-1234567:2026-03-01T11:30:00.250Z"
    body = event.body
    assert isinstance(body, OrderUpsert)
    assert body.state is OrderState.PAID
    assert body.last_updated == datetime(2026, 3, 1, 11, 30, 0, 250000, tzinfo=UTC)
    assert [(ln.line_id, ln.external_id, ln.qty, ln.unit_price) for ln in body.lines] == [
        ("OI-1", "SKU-1", 2, Decimal("10.50"))
    ]


def test_order_without_fulfillment_data_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="includedData=FULFILLMENT"):
        order_event(_order(None), NOW)


def test_cancelled_line_reporting_zero_ordered_still_reaches_the_core() -> None:
    items = [{"orderItemId": "OI-9", "quantityOrdered": 0, "product": {"sellerSku": "SKU-9"}}]
    event = order_event(_order("CANCELLED", items), NOW)
    assert event is not None and isinstance(event.body, OrderUpsert)
    assert event.body.lines[0].qty == 1


def test_order_with_no_mappable_line_yields_nothing() -> None:
    items = [{"orderItemId": "OI-9", "quantityOrdered": 1, "product": {"asin": "B000000000"}}]
    assert order_event(_order("UNSHIPPED", items), NOW) is None


def test_time_round_trip_keeps_milliseconds_and_utc() -> None:
    assert format_time(parse_time("2026-03-01T11:30:00.250Z")) == "2026-03-01T11:30:00.250Z"
    assert format_time(parse_time("2026-03-01T08:30:00-03:00")) == "2026-03-01T11:30:00Z"
    with pytest.raises(ValueError):
        parse_time("2026-03-01T11:30:00")


def test_fba_summary_counts_fulfillable_units_as_of_its_update() -> None:
    summary = InventorySummary.model_validate(
        {
            "sellerSku": "KETTLE",
            "lastUpdatedTime": "2026-03-01T09:00:00Z",
            "totalQuantity": 50,
            "inventoryDetails": {"fulfillableQuantity": 41},
        }
    )
    event = stock_count_event(summary, "fba-us", NOW)
    assert event is not None and isinstance(event.body, StockCount)
    assert (event.body.sku, event.body.location, event.body.qty) == ("KETTLE", "fba-us", 41)
    assert event.dedupe_key == "amazon:count:KETTLE:fba-us:2026-03-01T09:00:00Z"
    without_details = InventorySummary.model_validate({"sellerSku": "KETTLE", "totalQuantity": 50})
    assert stock_count_event(without_details, "fba-us", NOW) is None


def _note(kind: str, payload: dict[str, Any]) -> SpNotification:
    return SpNotification.model_validate(
        {
            "NotificationVersion": "1.0",
            "NotificationType": kind,
            "PayloadVersion": "1.0",
            "EventTime": "2026-03-01T11:59:00.000Z",
            "Payload": payload,
            "NotificationMetadata": {"NotificationId": "n-1", "PublishTime": "2026-03-01T11:59:00.000Z"},
        }
    )


def test_order_change_becomes_a_pointer_to_fetch() -> None:
    change = {
        "OrderChangeNotification": {
            "NotificationLevel": "OrderLevel",
            "SellerId": SELLER,
            "AmazonOrderId": "903-8868176-2219830",
            "OrderChangeType": "OrderStatusChange",
            "OrderChangeTrigger": {"TimeOfOrderChange": None, "ChangeReason": "x"},
            "Summary": {},
        }
    }
    [event] = notification_events(_note("ORDER_CHANGE", change), SELLER, NOW)
    assert event.dedupe_key == "amazon:notif:n-1"
    assert isinstance(event.body, Notification)
    assert (event.body.topic, event.body.resource) == ("ORDER_CHANGE", "903-8868176-2219830")


def test_mfn_quantity_change_is_an_observation() -> None:
    payload = {"SellerId": SELLER, "FulfillmentChannelCode": "DEFAULT", "Sku": "MUG", "Quantity": 7}
    [event] = notification_events(_note("LISTINGS_ITEM_MFN_QUANTITY_CHANGE", payload), SELLER, NOW)
    assert isinstance(event.body, ListingObservation)
    assert (event.body.external_id, event.body.quantity) == ("MUG", 7)


def test_notification_for_another_seller_is_refused() -> None:
    payload = {"SellerId": "AOTHER", "FulfillmentChannelCode": "DEFAULT", "Sku": "MUG", "Quantity": 7}
    with pytest.raises(ValueError, match="another selling partner"):
        notification_events(_note("LISTINGS_ITEM_MFN_QUANTITY_CHANGE", payload), SELLER, NOW)


def test_unrelated_notification_types_and_channels_produce_nothing() -> None:
    assert notification_events(_note("ANY_OFFER_CHANGED", {}), SELLER, NOW) == []
    payload = {"SellerId": SELLER, "FulfillmentChannelCode": "AMAZON_NA", "Sku": "MUG", "Quantity": 7}
    assert notification_events(_note("LISTINGS_ITEM_MFN_QUANTITY_CHANGE", payload), SELLER, NOW) == []


def test_listing_reads_quantity_price_and_fba_from_amazon_shapes() -> None:
    item = ListingsItem.model_validate(
        {
            "sku": "MUG",
            "attributes": {
                "purchasable_offer": [
                    {
                        "marketplace_id": "ATVPDKIKX0DER",
                        "currency": "USD",
                        "audience": "ALL",
                        "our_price": [{"schedule": [{"value_with_tax": 19.9}]}],
                    }
                ]
            },
            "fulfillmentAvailability": [{"fulfillmentChannelCode": "DEFAULT", "quantity": 4}],
        }
    )
    assert mfn_quantity(item) == 4
    assert offer_price(item, "ATVPDKIKX0DER") == Decimal("19.90")
    assert offer_price(item, "A2EUQ1WTGCTBG2") is None
    assert not is_fba_only(item)
    fba = ListingsItem.model_validate(
        {"sku": "K", "fulfillmentAvailability": [{"fulfillmentChannelCode": "AMAZON_NA"}]}
    )
    assert is_fba_only(fba) and mfn_quantity(fba) is None


def test_limiter_is_amazons_bucket_less_one_token_of_jitter_headroom() -> None:
    limits = limiter_limits(USAGE_PLANS, {"getListingsItem": 20.0})
    capacity, period = limits["patchListingsItem"]  # plan 5 rps, burst 5
    assert capacity == 4 and capacity / period == pytest.approx(5.0)
    capacity, period = limits["getListingsItem"]  # burst 10, rate overridden to 20
    assert capacity == 9 and capacity / period == pytest.approx(20.0)
    capacity, period = limits["searchOrders"]
    assert capacity / period == pytest.approx(0.0056)
    with pytest.raises(ValueError):
        limiter_limits(USAGE_PLANS, {"getOrder": 0.0})
