"""Pure ShipBob → syncd mapping: which figure is the count, shipment lines, receipts, observations."""

from __future__ import annotations

from datetime import UTC, datetime

from syncd.capture.events import Receipt, Shipment, StockCount
from syncd.channels.base import ListingRef
from syncd.channels.threepl.mapping import (
    count_event,
    is_shipped,
    observation,
    receipt_events,
    shipment_events,
)
from syncd.channels.threepl.models import InventoryLevel, ReceivingOrder
from syncd.channels.threepl.models import Shipment as ShipmentBody

T0 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def level(**kw: object) -> InventoryLevel:
    base: dict[str, object] = {
        "inventory_id": 1001,
        "name": "Blue Tee M",
        "sku": "TEE-BLU-M",
        "total_on_hand_quantity": 50,
        "total_committed_quantity": 8,
        "total_fulfillable_quantity": 42,
        "total_sellable_quantity": 142,
        "total_awaiting_quantity": 100,
    }
    base.update(kw)
    return InventoryLevel.model_validate(base)


def shipment_body(products: list[dict[str, object]], **kw: object) -> ShipmentBody:
    base: dict[str, object] = {
        "id": 900001,
        "order_id": 500001,
        "reference_id": "amazon:111-222",
        "status": "Completed",
        "actual_fulfillment_date": "2026-10-01T12:00:00Z",
        "last_update_at": "2026-10-01T12:00:01Z",
        "products": products,
    }
    base.update(kw)
    return ShipmentBody.model_validate(base)


def product(pid: int, sku: str, items: list[tuple[int, int]]) -> dict[str, object]:
    return {
        "id": pid,
        "reference_id": sku,
        "sku": sku,
        "name": sku,
        "inventory_items": [{"id": i, "name": sku, "quantity": q, "quantity_committed": q} for i, q in items],
    }


def test_count_is_on_hand_not_fulfillable() -> None:
    event = count_event(level(), "main", T0)
    assert event is not None
    assert isinstance(event.body, StockCount)
    assert (event.body.sku, event.body.qty, event.body.location, event.body.source) == (
        "TEE-BLU-M",
        50,
        "main",
        "threepl",
    )
    assert event.body.as_of == T0
    assert event.dedupe_key == f"threepl:count:TEE-BLU-M:main:{T0.isoformat()}"


def test_level_without_sku_gives_no_count() -> None:
    assert count_event(level(sku=None), "main", T0) is None


def test_shipment_gives_one_event_per_product_line_tied_to_the_order() -> None:
    body = shipment_body([product(1, "A", [(11, 2)]), product(2, "B", [(12, 1)])])
    mapped = shipment_events(body, "main", T0, {})
    assert mapped.unresolved == []
    shipments = [e.body for e in mapped.events]
    assert all(isinstance(s, Shipment) for s in shipments)
    assert [(s.sku, s.qty) for s in shipments if isinstance(s, Shipment)] == [("A", 2), ("B", 1)]
    first = shipments[0]
    assert isinstance(first, Shipment)
    assert first.order_ref == "amazon:111-222"
    assert first.at == datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
    assert first.ref == "shipment:900001"
    assert [e.dedupe_key for e in mapped.events] == ["threepl:shipment:900001:1:11", "threepl:shipment:900001:2:12"]


def test_shipment_dedupe_key_does_not_depend_on_when_it_was_seen() -> None:
    body = shipment_body([product(1, "A", [(11, 2)])])
    early = shipment_events(body, "main", T0, {}).events
    late = shipment_events(body, "main", datetime(2026, 10, 5, tzinfo=UTC), {}).events
    assert [e.dedupe_key for e in early] == [e.dedupe_key for e in late]


def test_bundle_components_are_named_from_the_inventory_map_or_reported() -> None:
    body = shipment_body([product(3, "KIT", [(21, 2), (22, 1)])])
    mapped = shipment_events(body, "main", T0, {21: "CUP"})
    assert [(e.body.sku, e.body.qty) for e in mapped.events if isinstance(e.body, Shipment)] == [("CUP", 2)]
    assert mapped.unresolved == [22]


def test_only_completed_shipments_count_as_shipped() -> None:
    assert is_shipped("Completed")
    assert not is_shipped("Processing")
    assert not is_shipped("LabeledCreated")
    assert not is_shipped(None)


def wro(status: str, history: list[tuple[str, str]]) -> ReceivingOrder:
    return ReceivingOrder.model_validate(
        {
            "id": 7001,
            "status": status,
            "last_updated_date": "2026-10-01T09:00:00Z",
            "inventory_quantities": [
                {
                    "inventory_id": 1001,
                    "sku": "A",
                    "expected_quantity": 10,
                    "received_quantity": 10,
                    "stowed_quantity": 10,
                },
                {
                    "inventory_id": 1002,
                    "sku": "B",
                    "expected_quantity": 5,
                    "received_quantity": 0,
                    "stowed_quantity": 0,
                },
            ],
            "status_history": [{"id": n, "status": s, "timestamp": t} for n, (s, t) in enumerate(history)],
        }
    )


def test_completed_wro_gives_receipts_for_received_lines_at_completion_time() -> None:
    done = wro("Completed", [("Awaiting", "2026-10-01T08:00:00Z"), ("Completed", "2026-10-01T08:30:00Z")])
    events = receipt_events(done, "main", T0)
    assert len(events) == 1
    body = events[0].body
    assert isinstance(body, Receipt)
    assert (body.sku, body.qty, body.ref) == ("A", 10, "wro:7001")
    assert body.at == datetime(2026, 10, 1, 8, 30, tzinfo=UTC)
    assert events[0].dedupe_key == "threepl:receipt:7001:1001"


def test_wro_not_completed_gives_no_receipt() -> None:
    assert receipt_events(wro("Processing", [("Awaiting", "2026-10-01T08:00:00Z")]), "main", T0) == []


def test_observation_reports_fulfillable_and_every_total() -> None:
    ref = ListingRef(external_id="TEE-BLU-M")
    seen = observation(ref, level())
    assert seen.quantity == 42
    assert seen.extra["on_hand"] == "50" and seen.extra["committed"] == "8"
    missing = observation(ref, None)
    assert missing.quantity is None and missing.status == "missing"


def test_naive_timestamps_are_read_as_utc() -> None:
    body = shipment_body([product(1, "A", [(11, 1)])], actual_fulfillment_date="2026-10-01T12:00:00")
    assert body.actual_fulfillment_date == datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
