"""Pure translation of ShipBob bodies into syncd events: counts, shipments, receipts, observations.

Which figure is the count: `total_on_hand_quantity`, the units physically in the building. The 3PL's
`committed` is its own reservation for fulfilment orders, and those orders are syncd's own marketplace
orders, already committed in syncd's ledger; counting `fulfillable` instead would subtract them twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from syncd.capture.events import Event, Receipt, Shipment, StockCount
from syncd.channels.base import ListingRef, Observation
from syncd.channels.threepl.models import InventoryLevel, ReceivingOrder
from syncd.channels.threepl.models import Shipment as ShipmentBody

SOURCE = "threepl"
# `Orders.OrderStatusEnum` of a shipment: Completed = picked, packed and handed to the carrier.
SHIPPED_STATUSES = frozenset({"Completed"})
# Topics whose body is a shipment that left the building (dated names, then the legacy v1 name).
SHIPPED_TOPICS = frozenset({"order.shipped", "order_shipped"})
RECEIVED_STATUSES = frozenset({"Completed"})


def is_shipped(status: str | None) -> bool:
    """True for a shipment status that means the goods left the fulfillment center."""
    return status in SHIPPED_STATUSES


def count_event(level: InventoryLevel, location: str, as_of: datetime) -> Event | None:
    """A StockCount of on hand for the level's 3PL SKU; None for an item without a SKU."""
    if not level.sku:
        return None
    return Event(
        dedupe_key=f"{SOURCE}:count:{level.sku}:{location}:{as_of.isoformat()}",
        source=SOURCE,
        body=StockCount(
            sku=level.sku,
            location=location,
            qty=max(0, level.total_on_hand_quantity),
            as_of=as_of,
            source=SOURCE,
        ),
        raw=level.model_dump(),
    )


def observation(ref: ListingRef, level: InventoryLevel | None) -> Observation:
    """What the 3PL shows for a SKU: fulfillable as the quantity, every total in `extra`."""
    if level is None:
        return Observation(ref=ref, quantity=None, status="missing")
    extra = {
        "inventory_id": str(level.inventory_id),
        "on_hand": str(level.total_on_hand_quantity),
        "committed": str(level.total_committed_quantity),
        "fulfillable": str(level.total_fulfillable_quantity),
        "sellable": str(level.total_sellable_quantity),
        "awaiting": str(level.total_awaiting_quantity),
        "exception": str(level.total_exception_quantity),
    }
    return Observation(ref=ref, quantity=max(0, level.total_fulfillable_quantity), status="active", extra=extra)


class ShipmentMapping(NamedTuple):
    """Events for a shipment, and the inventory ids that could not be named by a SKU."""

    events: list[Event]
    unresolved: list[int]


def shipment_events(
    shipment: ShipmentBody,
    location: str,
    now: datetime,
    sku_of_inventory: Mapping[int, str],
    raw: dict[str, Any] | None = None,
) -> ShipmentMapping:
    """One Shipment event per (product line, inventory item).

    The dedupe key is built from the shipment, product and inventory ids, not the webhook-id: the
    same shipment reached through the webhook and through the orders poll must collapse into one.
    A product with one inventory item is named by its own SKU; a bundle's items carry no SKU in
    the payload and are named from `sku_of_inventory` (filled by the stock poll).
    """
    at = shipment.actual_fulfillment_date or shipment.last_update_at or now
    order_ref = shipment.reference_id or None
    events: list[Event] = []
    unresolved: list[int] = []
    for product in shipment.products or []:
        items = product.inventory_items or []
        for item in items:
            if item.quantity < 1:
                continue
            sku = (product.sku or product.reference_id) if len(items) == 1 else None
            sku = sku or sku_of_inventory.get(item.id)
            if not sku:
                unresolved.append(item.id)
                continue
            events.append(
                Event(
                    dedupe_key=f"{SOURCE}:shipment:{shipment.id}:{product.id}:{item.id}",
                    source=SOURCE,
                    received_at=now,
                    body=Shipment(
                        sku=sku,
                        location=location,
                        qty=item.quantity,
                        ref=f"shipment:{shipment.id}",
                        at=at,
                        order_ref=order_ref,
                    ),
                    raw=raw,
                )
            )
    return ShipmentMapping(events, unresolved)


def completed_at(wro: ReceivingOrder) -> datetime | None:
    """When a WRO completed: its Completed status change, else its last update if it is Completed."""
    for change in wro.status_history or []:
        if change.status in RECEIVED_STATUSES:
            return change.timestamp
    return wro.last_updated_date if wro.status in RECEIVED_STATUSES else None


def receipt_events(wro: ReceivingOrder, location: str, now: datetime) -> list[Event]:
    """One Receipt per inventory item of a completed WRO, for the received quantity."""
    if wro.status not in RECEIVED_STATUSES:
        return []
    at = completed_at(wro) or now
    events = []
    for line in wro.inventory_quantities or []:
        if not line.sku or line.received_quantity < 1:
            continue
        events.append(
            Event(
                dedupe_key=f"{SOURCE}:receipt:{wro.id}:{line.inventory_id}",
                source=SOURCE,
                received_at=now,
                body=Receipt(sku=line.sku, location=location, qty=line.received_quantity, ref=f"wro:{wro.id}", at=at),
                raw=line.model_dump(),
            )
        )
    return events
