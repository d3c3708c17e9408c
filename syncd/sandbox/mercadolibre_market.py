"""Simulated MercadoLibre catalogue and sales: orders, shipments, user-product stock, notifications."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from syncd.sandbox.mercadolibre_core import IdSource, SimClock, SimConfig, api_error, iso_local, money
from syncd.sandbox.mercadolibre_items import SimItem, new_item, update_item


@dataclass
class SimShipment:
    """`/shipments/{id}`: where "shipped" really lives (orders carry only `shipping.id`)."""

    id: int
    order_id: int
    status: str
    date_created: datetime
    last_updated: datetime
    substatus: str | None = None

    def to_json(self, config: SimConfig) -> dict[str, Any]:
        """The shipment in the `x-format-new: true` shape (subset)."""
        return {
            "id": self.id,
            "order_id": self.order_id,
            "status": self.status,
            "substatus": self.substatus,
            "date_created": iso_local(self.date_created),
            "last_updated": iso_local(self.last_updated),
            "logistic": {"direction": "forward", "mode": "me2", "type": "cross_docking"},
            "source": {"site_id": config.site_id, "market_place": "MELI", "application_id": None},
        }


@dataclass
class SimOrder:
    """One order; `lines` are `order_items` entries."""

    id: int
    status: str
    date_created: datetime
    last_updated: datetime
    pack_id: int
    lines: list[dict[str, Any]]
    buyer_id: int
    shipping_id: int
    payment_id: int
    tags: list[str]
    date_closed: datetime | None = None
    cancel_detail: dict[str, str] | None = None

    @property
    def total(self) -> float:
        """Sum of line amounts."""
        return float(sum(line["unit_price"] * line["quantity"] for line in self.lines))

    def to_json(self, config: SimConfig) -> dict[str, Any]:
        """The order as `GET /orders/{id}` shows it."""
        paid = self.status in ("paid", "partially_refunded")
        payment_status = {"paid": "approved", "cancelled": "cancelled"}.get(self.status, "pending")
        return {
            "id": self.id,
            "status": self.status,
            "status_detail": None,
            "date_created": iso_local(self.date_created),
            "date_closed": iso_local(self.date_closed) if self.date_closed else None,
            "last_updated": iso_local(self.last_updated),
            "pack_id": self.pack_id,
            "order_items": self.lines,
            "total_amount": money(self.total),
            "paid_amount": money(self.total) if paid else 0,
            "currency_id": config.currency_id,
            "buyer": {"id": self.buyer_id, "nickname": f"TESTBUYER{self.buyer_id % 1000}"},
            "seller": {"id": config.user_id, "nickname": "TESTSELLER"},
            "payments": [
                {
                    "id": self.payment_id,
                    "order_id": self.id,
                    "status": payment_status,
                    "status_detail": "accredited" if paid else None,
                    "transaction_amount": money(self.total),
                }
            ],
            "shipping": {"id": self.shipping_id},
            "tags": list(self.tags),
            "cancel_detail": self.cancel_detail,
        }


class Market:
    """Items, orders and shipments; every change calls `emit(topic, resource)` for notifications."""

    def __init__(self, config: SimConfig, clock: SimClock, ids: IdSource) -> None:
        self.config = config
        self.clock = clock
        self.ids = ids
        self.items: dict[str, SimItem] = {}
        self.orders: dict[int, SimOrder] = {}
        self.shipments: dict[int, SimShipment] = {}
        self.up_versions: dict[str, int] = {}
        self.emit: Callable[[str, str], None] = lambda topic, resource: None

    # ----- items -------------------------------------------------------------------------------

    def seed_item(self, spec: dict[str, Any]) -> SimItem:
        """Create a listing from a control-plane spec (see `new_item`)."""
        item = new_item(spec, self.ids, self.clock.now())
        self.items[item.id] = item
        for up in item.ups():
            self.up_versions.setdefault(up, 1)
        return item

    def get_item(self, item_id: str) -> SimItem:
        """The item or a 404 with the platform's body."""
        item = self.items.get(item_id)
        if item is None:
            raise api_error(404, "not_found", f"Item with id {item_id} not found")
        return item

    def update_item(self, item_id: str, body: Any) -> tuple[SimItem, list[str]]:
        """Apply `PUT /items/{id}`; returns the item and any warnings. Raises SimError (atomic)."""
        item = self.get_item(item_id)
        before = item.stock_snapshot()
        warnings = update_item(item, body, self.ids, self.clock.now())
        self._touch_item(item, before)
        return item, warnings

    def _touch_item(self, item: SimItem, before: dict[str, int]) -> None:
        item.last_updated = self.clock.now()
        self.emit("items", f"/items/{item.id}")
        after = item.stock_snapshot()
        for up in sorted(set(before) | set(after)):
            if before.get(up) != after.get(up):
                # x-version bumps on every stock change, sales included.
                self.up_versions[up] = self.up_versions.get(up, 0) + 1
                self.emit("stock-locations", f"/user-products/{up}/stock")

    def up_stock(self, up_id: str) -> tuple[dict[str, Any], int]:
        """`GET /user-products/{id}/stock` body and its `x-version`."""
        for item in self.items.values():
            snapshot = item.stock_snapshot()
            if up_id in snapshot:
                body = {
                    "locations": [{"type": "selling_address", "quantity": snapshot[up_id]}],
                    "user_id": self.config.user_id,
                    "id": up_id,
                }
                return body, self.up_versions.get(up_id, 1)
        raise api_error(404, "not_found", f"User product {up_id} not found")

    def search_items(self, status: str | None, seller_sku: str | None, up_id: str | None) -> list[str]:
        """Item ids of the seller matching `/users/{id}/items/search` filters, newest first."""
        found = []
        for item in sorted(self.items.values(), key=lambda i: i.date_created, reverse=True):
            skus = {item.seller_sku, *(v.seller_sku for v in item.variations)} - {None}
            if status and item.status != status:
                continue
            if seller_sku and seller_sku not in skus:
                continue
            if up_id and up_id not in item.ups():
                continue
            found.append(item.id)
        return found

    # ----- sales -------------------------------------------------------------------------------

    def sale(self, item_id: str, variation_id: int | None, quantity: int, status: str = "paid") -> SimOrder:
        """A buyer purchase: decrements the listing at order creation and creates the order."""
        if status not in ("paid", "payment_required", "payment_in_process", "confirmed"):
            raise api_error(400, "bad_request", f"cannot create an order in status {status}")
        item = self.get_item(item_id)
        if item.status != "active":
            raise api_error(409, "conflict", f"item {item_id} is {item.status}")
        if item.variations and variation_id is None:
            raise api_error(400, "bad_request", "variation_id is required for items with variations")
        variation = item.variation(variation_id) if variation_id is not None else None
        if variation_id is not None and variation is None:
            raise api_error(404, "not_found", f"variation {variation_id} not found")
        available = variation.available_quantity if variation else item.available_quantity
        if quantity < 1 or quantity > available:
            raise api_error(409, "conflict", f"only {available} available")
        before = item.stock_snapshot()
        if variation:
            variation.available_quantity -= quantity
            variation.sold_quantity += quantity
        else:
            item.available_quantity -= quantity
        item.sold_quantity += quantity
        item.couple_status(self.clock.now())
        now = self.clock.now()
        unit_price = variation.price if variation else item.price
        line = {
            "item": {
                "id": item.id,
                "title": item.title,
                "category_id": f"{self.config.site_id}1055",
                "variation_id": variation.id if variation else None,
                "seller_custom_field": None,
                "seller_sku": (variation.seller_sku if variation else item.seller_sku),
                "variation_attributes": variation.attribute_combinations if variation else [],
                "user_product_id": variation.user_product_id if variation else item.user_product_id,
            },
            "quantity": quantity,
            "requested_quantity": {"measure": "unit", "value": quantity},
            "unit_price": money(unit_price),
            "full_unit_price": money(unit_price),
            "currency_id": self.config.currency_id,
            "sale_fee": round(unit_price * 0.13, 2),
            "listing_type_id": "gold_special",
        }
        order = SimOrder(
            id=self.ids.order(),
            status=status,
            date_created=now,
            last_updated=now,
            pack_id=self.ids.pack(),
            lines=[line],
            buyer_id=100_000_000 + self.ids.rng.randrange(900_000_000),
            shipping_id=self.ids.shipment(),
            payment_id=self.ids.shipment() * 3,
            tags=["paid", "not_delivered"] if status == "paid" else ["not_paid", "not_delivered"],
            date_closed=now if status == "paid" else None,
        )
        self.orders[order.id] = order
        shipment_status = "ready_to_ship" if status == "paid" else "pending"
        self.shipments[order.shipping_id] = SimShipment(order.shipping_id, order.id, shipment_status, now, now)
        self.emit("orders_v2", f"/orders/{order.id}")
        self._touch_item(item, before)
        return order

    def get_order(self, order_id: int) -> SimOrder:
        """The order or a 404."""
        order = self.orders.get(order_id)
        if order is None:
            raise api_error(404, "not_found", f"Order {order_id} not found")
        return order

    def get_shipment(self, shipment_id: int) -> SimShipment:
        """The shipment or a 404."""
        shipment = self.shipments.get(shipment_id)
        if shipment is None:
            raise api_error(404, "not_found", f"Shipment {shipment_id} not found")
        return shipment

    def order_action(self, order_id: int, action: str, restock: bool = True) -> SimOrder:
        """`pay`, `ship`, `deliver` or `cancel` an order, as buyer, carrier or ML would."""
        order = self.get_order(order_id)
        shipment = self.shipments[order.shipping_id]
        now = self.clock.now()
        if action == "pay":
            if order.status not in ("payment_required", "payment_in_process", "confirmed", "partially_paid"):
                raise api_error(409, "conflict", f"order is {order.status}")
            order.status, order.date_closed, order.tags = "paid", now, ["paid", "not_delivered"]
            shipment.status = "ready_to_ship"
        elif action == "ship":
            if order.status != "paid" or shipment.status != "ready_to_ship":
                raise api_error(409, "conflict", f"order is {order.status}, shipment {shipment.status}")
            # Shipping changes the shipment, not the order: the order's last_updated stays put.
            shipment.status, shipment.last_updated = "shipped", now
            self.emit("shipments", f"/shipments/{shipment.id}")
            return order
        elif action == "deliver":
            if shipment.status != "shipped":
                raise api_error(409, "conflict", f"shipment is {shipment.status}")
            shipment.status = "delivered"
            order.tags = [t for t in order.tags if t != "not_delivered"] + ["delivered"]
        elif action == "cancel":
            if order.status == "cancelled" or shipment.status in ("shipped", "delivered"):
                raise api_error(409, "conflict", f"order is {order.status}, shipment {shipment.status}")
            order.status = "cancelled"
            order.cancel_detail = {"group": "buyer", "code": "BUYER_CANCEL", "description": "Cancelled by buyer"}
            shipment.status = "cancelled"
            if restock:
                self._restock(order)
        else:
            raise api_error(400, "bad_request", f"unknown action {action}")
        order.last_updated = shipment.last_updated = now
        self.emit("orders_v2", f"/orders/{order.id}")
        self.emit("shipments", f"/shipments/{shipment.id}")
        return order

    def _restock(self, order: SimOrder) -> None:
        for line in order.lines:
            item = self.items.get(line["item"]["id"])
            if item is None or item.status == "closed":
                continue
            before = item.stock_snapshot()
            variation = item.variation(line["item"]["variation_id"]) if line["item"]["variation_id"] else None
            if variation:
                variation.available_quantity += line["quantity"]
            else:
                item.available_quantity += line["quantity"]
            item.couple_status(self.clock.now())
            self._touch_item(item, before)

    def search_orders(
        self,
        statuses: Iterable[str] | None,
        updated_from: datetime | None,
        updated_to: datetime | None,
        descending: bool,
    ) -> list[SimOrder]:
        """Orders of the seller for `/orders/search`; cancelled only when asked for by status."""
        wanted = set(statuses) if statuses else None
        horizon = self.clock.now() - timedelta(days=365)  # only ~12 months are searchable
        found = [
            o
            for o in self.orders.values()
            if o.date_created >= horizon
            and (o.status in wanted if wanted is not None else o.status != "cancelled")
            and (updated_from is None or o.last_updated >= updated_from)
            and (updated_to is None or o.last_updated <= updated_to)
        ]
        # date_asc/date_desc sort on creation date: offsets stay stable while orders get updated.
        return sorted(found, key=lambda o: (o.date_created, o.id), reverse=descending)
