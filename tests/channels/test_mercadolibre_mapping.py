"""Pure MercadoLibre mappings: order states, seller-intent status, notification dedupe keys, intake checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import SecretStr

from syncd.capture.events import Notification, OrderUpsert
from syncd.channels.mercadolibre.mapping import (
    listing_status,
    listing_views,
    notification_dedupe_key,
    order_event,
    order_state,
)
from syncd.channels.mercadolibre.models import Item, NotificationBody, Order, Shipment
from syncd.channels.mercadolibre.webhook import MercadoLibreWebhook
from syncd.config import MercadoLibreSettings
from syncd.domain.models import OrderState

NOW = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "tags", "shipment", "expected"),
    [
        ("confirmed", [], None, OrderState.PENDING),  # "initial status, but not yet paid"
        ("payment_required", [], None, OrderState.PENDING),
        ("payment_in_process", [], None, OrderState.PENDING),
        ("partially_paid", [], None, OrderState.PENDING),
        ("paid", ["paid", "not_delivered"], "ready_to_ship", OrderState.PAID),
        ("paid", ["paid", "not_delivered"], None, OrderState.PAID),
        ("paid", ["paid", "not_delivered"], "shipped", OrderState.SHIPPED),
        ("paid", ["paid", "not_delivered"], "not_delivered", OrderState.SHIPPED),
        ("paid", ["paid", "delivered"], None, OrderState.SHIPPED),
        ("partially_refunded", ["paid"], None, OrderState.PAID),
        ("pending_cancel", [], None, OrderState.CANCELLED),
        ("cancelled", [], "shipped", OrderState.CANCELLED),
        ("invalid", [], None, OrderState.CANCELLED),
    ],
)
def test_order_status_maps_to_normalized_state(
    status: str, tags: list[str], shipment: str | None, expected: OrderState
) -> None:
    assert order_state(status, tags, shipment) is expected


def test_unknown_order_status_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        order_state("teleported", [], None)


def _order(**overrides: object) -> Order:
    raw: dict[str, object] = {
        "id": 2000003508419013,
        "status": "paid",
        "date_created": "2026-08-01T08:00:00.000-04:00",
        "last_updated": "2026-08-01T08:05:00.000-04:00",
        "order_items": [
            {"item": {"id": "MLM1", "variation_id": 174997747229}, "quantity": 2, "unit_price": 499.9},
            {"item": {"id": "MLM2", "variation_id": None}, "quantity": 1, "unit_price": 10},
        ],
        "tags": ["paid", "not_delivered"],
        "shipping": {"id": 40000000001},
    }
    raw.update(overrides)
    return Order.model_validate(raw)


def test_order_event_carries_listing_identity_and_shipment_time_orders_it() -> None:
    shipment = Shipment.model_validate(
        {"id": 40000000001, "status": "shipped", "last_updated": "2026-08-01T09:00:00.000-04:00"}
    )
    event = order_event(_order(), shipment, NOW)
    body = event.body
    assert isinstance(body, OrderUpsert)
    assert body.state is OrderState.SHIPPED
    assert [(line.external_id, line.variation_id, line.qty) for line in body.lines] == [
        ("MLM1", "174997747229", 2),
        ("MLM2", None, 1),
    ]
    assert body.lines[0].unit_price == Decimal("499.9")
    # The order itself did not move when it shipped; the shipment's time orders the update.
    assert body.last_updated == datetime(2026, 8, 1, 13, 0, tzinfo=UTC)
    assert event.dedupe_key == "mercadolibre:order:2000003508419013:2026-08-01T13:00:00.000+00:00:shipped"
    assert event.dedupe_key != order_event(_order(), None, NOW).dedupe_key


def test_out_of_stock_pause_reads_as_seller_still_wanting_it_active() -> None:
    assert listing_status("paused", ["out_of_stock"]) == ("active", "mercadolibre")
    assert listing_status("paused", []) == ("paused", "seller")
    assert listing_status("active", []) == ("active", "")
    assert listing_status("closed", []) == ("closed", "")


def test_listing_views_one_per_variation_with_item_price_fallback() -> None:
    item = Item.model_validate(
        {
            "id": "MLM9",
            "price": 100,
            "status": "active",
            "variations": [{"id": 1, "available_quantity": 3, "price": 90}, {"id": 2, "available_quantity": 0}],
        }
    )
    views = listing_views(item)
    assert [(v.variation_id, v.quantity, v.price) for v in views] == [("1", 3, Decimal(90)), ("2", 0, Decimal(100))]


def _note(**overrides: object) -> tuple[NotificationBody, dict[str, object]]:
    raw: dict[str, object] = {
        "resource": "/orders/2195160686",
        "user_id": 468424240,
        "topic": "orders_v2",
        "application_id": 5503910054141466,
        "attempts": 1,
        "sent": "2026-10-30T16:19:20.129Z",
        "received": "2026-10-30T16:19:20.106Z",
    }
    raw.update(overrides)
    return NotificationBody.model_validate(raw), raw


def test_redelivery_of_same_change_keeps_dedupe_key() -> None:
    first = notification_dedupe_key(*_note())
    retry = notification_dedupe_key(*_note(attempts=3, sent="2026-10-30T16:25:00.000Z"))
    with_id = notification_dedupe_key(*_note(_id="f9f08571-1f65-4c46-9e0a-c0f43faas1e2"))
    assert first == retry == with_id


def test_later_change_of_same_resource_gets_a_new_dedupe_key() -> None:
    first = notification_dedupe_key(*_note())
    later = notification_dedupe_key(*_note(received="2026-10-30T16:30:00.000Z", sent="2026-10-30T16:30:00.020Z"))
    assert first != later


def test_dedupe_key_without_received_falls_back_to_id_then_stable_hash() -> None:
    _, raw = _note(_id="abc")
    raw.pop("received")
    by_id = notification_dedupe_key(NotificationBody.model_validate(raw), raw)
    assert by_id == "mercadolibre:notif:id:abc"
    raw.pop("_id")
    hashed = notification_dedupe_key(NotificationBody.model_validate(raw), raw)
    raw_retry = {**raw, "attempts": 2, "sent": "2026-10-30T16:40:00.000Z"}
    assert hashed == notification_dedupe_key(NotificationBody.model_validate(raw_retry), raw_retry)


def _receiver(application_id: int = 5503910054141466) -> MercadoLibreWebhook:
    settings = MercadoLibreSettings(
        user_id=468424240, application_id=application_id, webhook_secret=SecretStr("s3cret-path")
    )
    return MercadoLibreWebhook(settings)


def test_webhook_path_secret_is_checked() -> None:
    receiver = _receiver()
    assert receiver.authenticate("s3cret-path", {}, b"{}")
    assert not receiver.authenticate("s3cret-pat", {}, b"{}")
    assert not receiver.authenticate(None, {}, b"{}")
    assert not MercadoLibreWebhook(MercadoLibreSettings(user_id=1)).authenticate("", {}, b"{}")


def test_webhook_parse_returns_pointer_event() -> None:
    _, raw = _note(user_id="468424240")  # some topics send user_id as a string
    events = _receiver().parse({}, json.dumps(raw).encode(), NOW)
    assert len(events) == 1
    body = events[0].body
    assert isinstance(body, Notification)
    assert (body.topic, body.resource) == ("orders_v2", "/orders/2195160686")
    assert events[0].source == "mercadolibre"
    assert events[0].raw == raw


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"topic": "orders_v2", "user_id": 468424240}).encode(), "resource"),
        (json.dumps(_note(user_id=1)[1]).encode(), "user_id"),
        (json.dumps(_note(application_id=42)[1]).encode(), "application_id"),
        (json.dumps(_note(resource="orders/1")[1]).encode(), "path"),
    ],
)
def test_webhook_parse_refuses_malformed_or_foreign_deliveries(payload: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        _receiver().parse({}, payload, NOW)


def test_application_check_is_skipped_when_not_configured() -> None:
    _, raw = _note(application_id=42)
    assert len(_receiver(application_id=0).parse({}, json.dumps(raw).encode(), NOW)) == 1


def test_topics_syncd_does_not_follow_are_acknowledged_without_events() -> None:
    _, raw = _note(topic="questions", resource="/questions/1")
    assert _receiver().parse({}, json.dumps(raw).encode(), NOW) == []
