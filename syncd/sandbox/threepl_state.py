"""State of the 3PL simulator: inventory, fulfilment orders, shipments, receiving orders (ShipBob shapes)."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from syncd.sandbox.common import OutageMode, SimServer, SlidingWindow
from syncd.sandbox.threepl_views import order_view, shipment_view, wro_view
from syncd.sandbox.threepl_webhooks import WebhookDispatcher


class SimError(Exception):
    """A control-plane or API request the simulated 3PL refuses; `status` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class InventoryItem:
    """One inventory item; ShipBob tracks stock per inventory item, not per product."""

    inventory_id: int
    product_id: int
    sku: str
    name: str
    on_hand: int
    committed: int = 0
    awaiting: int = 0
    exception: int = 0
    active: bool = True
    digital: bool = False

    @property
    def fulfillable(self) -> int:
        """On hand not committed to open orders."""
        return max(0, self.on_hand - self.committed)

    def level(self) -> dict[str, Any]:
        """The inventory-level body, exactly the fields the 2026-01 spec lists."""
        return {
            "inventory_id": self.inventory_id,
            "name": self.name,
            "sku": self.sku,
            "total_on_hand_quantity": self.on_hand,
            "total_committed_quantity": self.committed,
            "total_fulfillable_quantity": self.fulfillable,
            # Sellable = fulfillable + awaiting (APIS_EVIDENCE §3), not APIS.md's example.
            "total_sellable_quantity": self.fulfillable + self.awaiting,
            "total_awaiting_quantity": self.awaiting,
            "total_backordered_quantity": 0,
            "total_exception_quantity": self.exception,
            "total_internal_transfer_quantity": 0,
        }


@dataclass
class OrderLine:
    """One product of a fulfilment order and how much of it the 3PL holds and has shipped."""

    item: InventoryItem
    quantity: int
    committed: int = 0
    shipped: int = 0


@dataclass
class ShipmentRec:
    """One shipment of an order; `order.shipped` fires once per shipment."""

    id: int
    order: OrderRec
    lines: list[tuple[OrderLine, int]]
    created: datetime
    updated: datetime
    status: str = "Processing"
    fulfilled_at: datetime | None = None
    webhook_id: str | None = None


@dataclass
class OrderRec:
    """A fulfilment order; `reference_id` is syncd's "channel:order_id"."""

    id: int
    reference_id: str
    order_number: str
    created: datetime
    updated: datetime
    lines: list[OrderLine]
    shipments: list[ShipmentRec] = field(default_factory=list)
    status: str = "Processing"


@dataclass
class WroRec:
    """A warehouse receiving order (WRO); completing it raises on hand."""

    id: int
    purchase_order_number: str | None
    expected: list[tuple[InventoryItem, int]]
    inserted: datetime
    updated: datetime
    status: str = "Awaiting"
    history: list[tuple[str, datetime]] = field(default_factory=list)


class ThreePLState:
    """Everything the simulated 3PL knows; the HTTP app is a thin layer over this."""

    def __init__(
        self,
        api_token: str,
        *,
        clock: Callable[[], datetime] | None = None,
        rate_limit: int = 150,
        rate_window: float = 60.0,
        seed: int = 0,
        retry_scale: float = 1.0,
    ) -> None:
        self.api_token = api_token
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.windows: dict[str, SlidingWindow] = {}
        self.mode = OutageMode.UP
        # Set by `start`; needed to close the socket for the "refuse" outage mode.
        self.server: SimServer | None = None
        self.background: set[asyncio.Task[None]] = set()
        self.stopping = asyncio.Event()  # set at app shutdown: ends "timeout"-mode hangs
        self.counters: Counter[str] = Counter()
        self.items: dict[int, InventoryItem] = {}
        self.orders: dict[int, OrderRec] = {}
        self.shipments: dict[int, ShipmentRec] = {}
        self.wros: dict[int, WroRec] = {}
        # Distinct id ranges per kind so a mixed-up id in a test is caught, not silently resolved.
        self._inventory_ids = itertools.count(1001)
        self._order_ids = itertools.count(500001)
        self._shipment_ids = itertools.count(900001)
        self._wro_ids = itertools.count(7001)
        self.webhooks = WebhookDispatcher(self.counters, self.clock, seed=seed, retry_scale=retry_scale)

    # -- rate limit ---------------------------------------------------------------------------
    def window_for(self, token: str) -> SlidingWindow:
        """The sliding window of one user; ShipBob limits per user per application."""
        window = self.windows.get(token)
        if window is None or window.limit != self.rate_limit or window.window != self.rate_window:
            window = SlidingWindow(self.rate_limit, self.rate_window)
            self.windows[token] = window
        return window

    # -- inventory ----------------------------------------------------------------------------
    def item_by_sku(self, sku: str) -> InventoryItem:
        """The inventory item with this SKU (exact match)."""
        for item in self.items.values():
            if item.sku == sku:
                return item
        raise SimError(404, f"unknown sku {sku!r}")

    def seed(self, rows: list[dict[str, Any]], replace: bool = False) -> list[InventoryItem]:
        """Create or update inventory items from `{"sku", "name"?, "on_hand", "active"?, "digital"?}`."""
        if replace:
            self.items.clear()
        out = []
        for row in rows:
            sku = str(row["sku"])
            on_hand = int(row.get("on_hand", 0))
            if on_hand < 0:
                raise SimError(400, f"{sku}: on_hand must be >= 0")
            try:
                item = self.item_by_sku(sku)
                item.on_hand = on_hand
            except SimError:
                inv_id = next(self._inventory_ids)
                item = InventoryItem(inv_id, inv_id + 10000, sku, str(row.get("name", sku)), on_hand)
                self.items[inv_id] = item
            item.active = bool(row.get("active", True))
            item.digital = bool(row.get("digital", False))
            out.append(item)
        return out

    def adjust(self, sku: str, on_hand: int | None = None, delta: int | None = None) -> InventoryItem:
        """A cycle count: on hand changes with no shipment or receipt behind it."""
        item = self.item_by_sku(sku)
        new = on_hand if on_hand is not None else item.on_hand + (delta or 0)
        if new < 0:
            raise SimError(409, f"{sku}: on hand cannot go below 0")
        item.on_hand = new
        return item

    # -- orders and shipments -----------------------------------------------------------------
    def order_by_ref(self, reference_id: str) -> OrderRec | None:
        """The order with this reference id, if any."""
        for order in self.orders.values():
            if order.reference_id == reference_id:
                return order
        return None

    def create_order(
        self, reference_id: str, products: list[tuple[str, int]], order_number: str | None = None
    ) -> OrderRec:
        """Accept a fulfilment order and commit what is fulfillable for it."""
        if not reference_id:
            raise SimError(400, "reference_id is required")
        if self.order_by_ref(reference_id) is not None:
            raise SimError(422, f"an order with reference_id {reference_id!r} already exists")
        if not products:
            raise SimError(400, "products is required")
        lines = []
        for sku, qty in products:
            if qty < 1:
                raise SimError(400, f"{sku}: quantity must be >= 1")
            lines.append(OrderLine(self.item_by_sku(sku), qty))
        for line in lines:
            line.committed = min(line.quantity, line.item.fulfillable)
            line.item.committed += line.committed
        now = self.clock()
        order = OrderRec(next(self._order_ids), reference_id, order_number or reference_id, now, now, lines)
        self.orders[order.id] = order
        return order

    def ship(self, reference_id: str, products: list[tuple[str, int]] | None = None) -> ShipmentRec:
        """Ship (part of) an order: on hand and committed fall, `order.shipped` goes out."""
        order = self.order_by_ref(reference_id)
        if order is None:
            if not products:
                raise SimError(404, f"no order {reference_id!r} and no lines to create it from")
            order = self.create_order(reference_id, products)
        if order.status == "Cancelled":
            raise SimError(409, f"order {reference_id!r} is cancelled")
        wanted = products or [(ln.item.sku, ln.quantity - ln.shipped) for ln in order.lines]
        picks: list[tuple[OrderLine, int]] = []
        for sku, qty in wanted:
            line = next((ln for ln in order.lines if ln.item.sku == sku), None)
            if line is None or qty < 1 or qty > line.quantity - line.shipped:
                raise SimError(409, f"{sku}: cannot ship {qty} on order {reference_id!r}")
            if line.item.on_hand < qty:
                raise SimError(409, f"{sku}: on hand {line.item.on_hand} < {qty}")
            picks.append((line, qty))
        if not picks:
            raise SimError(409, f"order {reference_id!r} has nothing left to ship")
        for line, qty in picks:
            released = min(line.committed, qty)
            line.committed -= released
            line.item.committed -= released
            line.item.on_hand -= qty
            line.shipped += qty
        now = self.clock()
        shipment = ShipmentRec(next(self._shipment_ids), order, picks, now, now, "Completed", now)
        order.shipments.append(shipment)
        done = all(ln.shipped >= ln.quantity for ln in order.lines)
        order.status = "Fulfilled" if done else "PartiallyFulfilled"
        order.updated = now
        self.shipments[shipment.id] = shipment
        shipment.webhook_id = self.webhooks.publish("order.shipped", shipment_view(shipment))
        return shipment

    def cancel(self, reference_id: str) -> OrderRec:
        """Cancel what is unshipped of an order and release its commitments."""
        order = self.order_by_ref(reference_id)
        if order is None:
            raise SimError(404, f"no order {reference_id!r}")
        if order.status in ("Fulfilled", "Cancelled"):
            raise SimError(409, f"order {reference_id!r} is {order.status}")
        for line in order.lines:
            line.item.committed -= line.committed
            line.committed = 0
        order.status = "Cancelled"
        order.updated = self.clock()
        return order

    # -- receiving ----------------------------------------------------------------------------
    def receive(self, products: list[tuple[str, int]], po: str | None, complete: bool) -> WroRec:
        """Create a WRO; awaiting stock counts as inbound until the WRO completes."""
        if not products:
            raise SimError(400, "lines is required")
        expected = []
        for sku, qty in products:
            if qty < 1:
                raise SimError(400, f"{sku}: quantity must be >= 1")
            expected.append((self.item_by_sku(sku), qty))
        now = self.clock()
        wro = WroRec(next(self._wro_ids), po, expected, now, now, history=[("Awaiting", now)])
        for item, qty in expected:
            item.awaiting += qty
        self.wros[wro.id] = wro
        if complete:
            self.complete_wro(wro.id)
        return wro

    def complete_wro(self, wro_id: int) -> WroRec:
        """Count and stow a WRO: awaiting becomes on hand."""
        wro = self.wros.get(wro_id)
        if wro is None:
            raise SimError(404, f"no receiving order {wro_id}")
        if wro.status != "Awaiting":
            raise SimError(409, f"receiving order {wro_id} is {wro.status}")
        for item, qty in wro.expected:
            item.awaiting -= qty
            item.on_hand += qty
        now = self.clock()
        wro.status, wro.updated = "Completed", now
        wro.history.append(("Completed", now))
        return wro

    def completed_at(self, wro: WroRec) -> datetime | None:
        """When the WRO reached Completed, for the CompletedStartDate filter."""
        return next((at for status, at in wro.history if status == "Completed"), None)

    def snapshot(self) -> dict[str, Any]:
        """Everything, for GET /_sim/state."""
        return {
            "mode": str(self.mode),
            "rate_limit": {"limit": self.rate_limit, "window_seconds": self.rate_window},
            "inventory": [item.level() for item in self.items.values()],
            "orders": [order_view(o) for o in self.orders.values()],
            "receiving": [wro_view(w) for w in self.wros.values()],
            "webhooks": [s.view(with_secret=False) for s in self.webhooks.subscriptions.values()],
            "faults": self.webhooks.faults.view(),
            "deliveries": list(self.webhooks.attempts),
            "counters": dict(self.counters),
        }
