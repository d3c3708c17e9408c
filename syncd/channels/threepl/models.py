"""ShipBob API bodies syncd reads (2026-01/2026-07 field names); unknown fields are ignored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


def _utc(value: datetime) -> datetime:
    # Some ShipBob timestamps come without an offset; they are UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class _Api(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class InventoryLevel(_Api):
    """One item of `GET /inventory-level`: totals across fulfillment centers."""

    inventory_id: int
    name: str | None = None
    sku: str | None = None
    total_on_hand_quantity: int = 0
    total_committed_quantity: int = 0
    total_fulfillable_quantity: int = 0
    total_sellable_quantity: int = 0
    total_awaiting_quantity: int = 0
    total_backordered_quantity: int = 0
    total_exception_quantity: int = 0
    total_internal_transfer_quantity: int = 0


class InventoryLevelPage(_Api):
    """A cursor page: links are URLs (or null), the cursor lives inside them."""

    items: list[InventoryLevel] = []
    first: str | None = None
    prev: str | None = None
    next: str | None = None
    last: str | None = None


class ShipmentInventoryItem(_Api):
    """`Orders.InventoryViewModel`: how many units of one inventory item a shipment holds."""

    id: int
    name: str | None = None
    quantity: int = 0
    quantity_committed: int | None = None


class ShipmentProduct(_Api):
    """`Orders.ShipmentProductViewModel`; quantities live in `inventory_items`."""

    id: int | None = None
    reference_id: str | None = None
    name: str | None = None
    sku: str | None = None
    inventory_items: list[ShipmentInventoryItem] | None = None


class FulfillmentCenter(_Api):
    """Where a shipment left from."""

    id: int
    name: str | None = None


class Shipment(_Api):
    """`Orders.ShipmentViewModel`, also the body of the `order.shipped` webhook."""

    id: int
    order_id: int | None = None
    reference_id: str | None = None
    created_date: UtcDatetime | None = None
    last_update_at: UtcDatetime | None = None
    actual_fulfillment_date: UtcDatetime | None = None
    status: str | None = None
    location: FulfillmentCenter | None = None
    products: list[ShipmentProduct] | None = None


class Order(_Api):
    """`Orders.OrderViewModel` (the fields syncd reads)."""

    id: int
    reference_id: str | None = None
    status: str | None = None
    shipments: list[Shipment] | None = None


class WroInventoryQuantity(_Api):
    """`Receiving.V2.InventoryQuantityViewModel`."""

    inventory_id: int
    sku: str | None = None
    expected_quantity: int = 0
    received_quantity: int = 0
    stowed_quantity: int = 0


class WroStatusChange(_Api):
    """`Receiving.V2.ReceivingOrderStatusHistoryViewModel`."""

    id: int | None = None
    status: str | None = None
    timestamp: UtcDatetime


class ReceivingOrder(_Api):
    """`Receiving.V2.WarehouseReceivingOrderViewModel` (a WRO)."""

    id: int
    status: str
    purchase_order_number: str | None = None
    insert_date: UtcDatetime | None = None
    last_updated_date: UtcDatetime | None = None
    inventory_quantities: list[WroInventoryQuantity] | None = None
    status_history: list[WroStatusChange] | None = None
