"""JSON views of the 3PL simulator's records, in ShipBob's response shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncd.sandbox.threepl_state import OrderRec, ShipmentRec, WroRec

# The one fulfillment center the simulator runs; ShipBob names them "City (ST)".
FULFILLMENT_CENTER = {"id": 1, "name": "Cicero (IL)"}


def iso(when: datetime) -> str:
    """ShipBob's UTC timestamp format (`...Z`)."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def shipment_view(shipment: ShipmentRec) -> dict[str, Any]:
    """`Orders.ShipmentViewModel`, also the `order.shipped` webhook body."""
    return {
        "id": shipment.id,
        "order_id": shipment.order.id,
        "reference_id": shipment.order.reference_id,
        "created_date": iso(shipment.created),
        "last_update_at": iso(shipment.updated),
        "actual_fulfillment_date": iso(shipment.fulfilled_at) if shipment.fulfilled_at else None,
        "is_tracking_uploaded": False,
        "status": shipment.status,
        "location": dict(FULFILLMENT_CENTER),
        "products": [
            {
                "id": line.item.product_id,
                "reference_id": line.item.sku,
                "name": line.item.name,
                "sku": line.item.sku,
                "inventory_items": [
                    {
                        "id": line.item.inventory_id,
                        "name": line.item.name,
                        "quantity": qty,
                        "quantity_committed": qty,
                    }
                ],
            }
            for line, qty in shipment.lines
        ],
        "tracking": {
            "carrier": "USPS",
            "carrier_service": "Ground Advantage",
            "shipping_date": iso(shipment.fulfilled_at) if shipment.fulfilled_at else None,
            "tracking_number": f"9400{shipment.id:018d}",
            "tracking_url": None,
        },
    }


def order_view(order: OrderRec) -> dict[str, Any]:
    """`Orders.OrderViewModel` (the fields syncd and a reader care about)."""
    return {
        "id": order.id,
        "reference_id": order.reference_id,
        "order_number": order.order_number,
        "created_date": iso(order.created),
        "purchase_date": iso(order.created),
        "status": order.status,
        "type": "DTC",
        "channel": {"id": 1, "name": "syncd"},
        "products": [
            {
                "id": ln.item.product_id,
                "reference_id": ln.item.sku,
                "sku": ln.item.sku,
                "quantity": ln.quantity,
            }
            for ln in order.lines
        ],
        "shipments": [shipment_view(s) for s in order.shipments],
    }


def wro_view(wro: WroRec) -> dict[str, Any]:
    """`Receiving.V2.WarehouseReceivingOrderViewModel`."""
    done = wro.status == "Completed"
    return {
        "id": wro.id,
        "status": wro.status,
        "purchase_order_number": wro.purchase_order_number,
        "insert_date": iso(wro.inserted),
        "last_updated_date": iso(wro.updated),
        "expected_arrival_date": iso(wro.inserted),
        "box_packaging_type": "EverythingInOneBox",
        "package_type": "Package",
        "box_labels_uri": None,
        "external_sync_timestamp": None,
        "fulfillment_center": dict(FULFILLMENT_CENTER),
        "inventory_quantities": [
            {
                "inventory_id": item.inventory_id,
                "sku": item.sku,
                "expected_quantity": qty,
                "received_quantity": qty if done else 0,
                "stowed_quantity": qty if done else 0,
            }
            for item, qty in wro.expected
        ],
        "status_history": [
            {"id": n + 1, "status": status, "timestamp": iso(at)}
            for n, (status, at) in enumerate(wro.history)
        ],
    }
