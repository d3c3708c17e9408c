"""The simulated seller account: what sells, what is stocked, and how orders move."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from syncd.sandbox import amazon_patch
from syncd.sandbox.amazon_gateway import Buckets, Counters, Ids, Tokens
from syncd.sandbox.amazon_notify import Notifier, listing_status_change, mfn_quantity_change, order_change
from syncd.sandbox.amazon_state import (
    FULFILLMENT_STATUSES,
    OPEN_STATUSES,
    FbaItem,
    Listing,
    OrderLine,
    SimClock,
    SimConfig,
    SimOrder,
)
from syncd.sandbox.common import OutageMode, SimServer


class SimError(Exception):
    """A control-plane request that cannot be honoured (answered 4xx with the message)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Submission:
    """The answer to one patchListingsItem."""

    status: str
    submission_id: str
    issues: list[dict[str, Any]]


class AmazonMarket:
    """Listings, orders and FBA inventory of one seller, plus the service's tokens and limits."""

    def __init__(self, config: SimConfig | None = None, seed: int = 0) -> None:
        self.config = config or SimConfig()
        self.clock = SimClock()
        self.ids = Ids(seed)
        self.counters = Counters()
        self.tokens = Tokens(self.clock)
        self.buckets = Buckets(self.config, time.monotonic)
        self.notifier = Notifier(self.config, self.counters)
        self.mode = OutageMode.UP
        self.server: SimServer | None = None  # set when served, so REFUSE can close the socket
        self._background: set[asyncio.Task[None]] = set()
        self.listings: dict[str, Listing] = {}
        self.orders: dict[str, SimOrder] = {}
        self.fba: dict[str, FbaItem] = {}
        self.pending_patches = 0
        self._timers: set[asyncio.TimerHandle] = set()

    # --- seeding ---------------------------------------------------------------------------------

    def seed_listing(self, spec: dict[str, Any]) -> Listing:
        """Create or replace a listing: {sku, quantity, price, [currency, asin, product_type, title, fba]}.

        Replacing an existing listing is the seller editing it in Seller Central, and notifies.
        """
        sku = spec.get("sku")
        if not isinstance(sku, str) or not sku:
            raise SimError("listing needs a sku")
        now = self.clock.stamp()
        market = self.config.marketplace_id
        old = self.listings.get(sku)
        attributes: dict[str, list[dict[str, Any]]] = {
            "item_name": [{"value": spec.get("title", sku), "marketplace_id": market}],
            "condition_type": [{"value": "new_new", "marketplace_id": market}],
        }
        fba = bool(spec.get("fba", False))
        if not fba:
            attributes["fulfillment_availability"] = [
                {
                    "fulfillment_channel_code": "DEFAULT",
                    "quantity": int(spec.get("quantity", 0)),
                    "lead_time_to_ship_max_days": 2,
                }
            ]
        if spec.get("price") is not None:
            attributes["purchasable_offer"] = [
                {
                    "marketplace_id": market,
                    "currency": spec.get("currency", "USD"),
                    "audience": "ALL",
                    "our_price": [{"schedule": [{"value_with_tax": float(Decimal(str(spec["price"])))}]}],
                }
            ]
        listing = Listing(
            sku=sku,
            asin=spec.get("asin") or (old.asin if old else self.ids.asin()),
            product_type=spec.get("product_type", "PRODUCT"),
            title=spec.get("title", sku),
            created=old.created if old else now,
            updated=now,
            attributes=attributes,
            fba=fba,
        )
        self.listings[sku] = listing
        if old is not None:
            # Re-seeding is the seller editing the offer in Seller Central: Amazon notifies that too.
            self._touch(listing, self._observable(old))
        return listing

    def seed_fba(self, spec: dict[str, Any]) -> FbaItem:
        """Create or update FBA inventory: {sku, fulfillable, [inbound, reserved, unfulfillable]}."""
        sku = spec.get("sku")
        if not isinstance(sku, str) or not sku:
            raise SimError("inventory item needs a sku")
        item = self.fba.get(sku)
        if item is None:
            listing = self.listings.get(sku)
            item = FbaItem(
                sku=sku,
                asin=listing.asin if listing else self.ids.asin(),
                fnsku="X00" + self.ids.digits(7),
                name=listing.title if listing else sku,
                fulfillable=0,
                updated=self.clock.stamp(),
            )
            self.fba[sku] = item
        for key in ("fulfillable", "inbound", "reserved", "unfulfillable"):
            if key in spec:
                setattr(item, key, max(0, int(spec[key])))
        item.updated = self.clock.stamp()
        return item

    # --- listings --------------------------------------------------------------------------------

    def submit_patch(
        self, sku: str, product_type: str, patches: list[dict[str, Any]], preview: bool
    ) -> Submission:
        """Check a patch now; apply it after the consistency delay when ACCEPTED."""
        issues = amazon_patch.check(self.listings.get(sku), product_type, patches)
        submission = str(uuid.uuid4())
        if issues:
            return Submission("INVALID", submission, issues)
        if preview:
            return Submission("VALID", submission, [])
        self.pending_patches += 1
        self._later(self.config.consistency_delay, self._apply_patch, sku, patches)
        return Submission("ACCEPTED", submission, [])

    def _apply_patch(self, sku: str, patches: list[dict[str, Any]]) -> None:
        self.pending_patches -= 1
        listing = self.listings.get(sku)
        if listing is None:
            return
        before = self._observable(listing)
        amazon_patch.apply(listing, patches)
        self._touch(listing, before)

    def _observable(self, listing: Listing) -> tuple[int | None, list[str]]:
        return listing.mfn_quantity(), listing.status(self.config.marketplace_id)

    def _touch(self, listing: Listing, before: tuple[int | None, list[str]]) -> None:
        """Bump lastUpdatedDate and notify what changed: MFN quantity, BUYABLE status."""
        now = self.clock.stamp()
        listing.updated = now
        qty, status = self._observable(listing)
        if qty is not None and qty != before[0]:
            self.notifier.publish(mfn_quantity_change(self.config, listing.sku, qty, now))
        if status != before[1]:
            self.notifier.publish(listing_status_change(self.config, listing, now))

    def _later(self, delay: float, fn: Any, *args: Any) -> None:
        loop = asyncio.get_running_loop()

        def run() -> None:
            self._timers.discard(handle)
            fn(*args)

        handle = loop.call_later(max(0.0, delay), run)
        self._timers.add(handle)

    # --- orders ----------------------------------------------------------------------------------

    def make_sale(self, spec: dict[str, Any]) -> SimOrder:
        """A buyer orders: {items: [{sku, qty}], [status, fulfilled_by, order_id]}."""
        status = spec.get("status", "UNSHIPPED")
        if status not in ("PENDING", "PENDING_AVAILABILITY", "UNSHIPPED"):
            raise SimError("a new order is PENDING, PENDING_AVAILABILITY or UNSHIPPED")
        fulfilled_by = spec.get("fulfilled_by", "MERCHANT")
        if fulfilled_by not in ("MERCHANT", "AMAZON"):
            raise SimError("fulfilled_by is MERCHANT or AMAZON")
        wanted = spec.get("items")
        if not isinstance(wanted, list) or not wanted:
            raise SimError("a sale needs items: [{sku, qty}]")
        lines = []
        for entry in wanted:
            sku, qty = entry.get("sku"), int(entry.get("qty", 1))
            listing = self.listings.get(sku)
            if listing is None or qty < 1:
                raise SimError(f"no listing {sku!r} or bad qty", 404 if listing is None else 400)
            have = self._sellable(listing, fulfilled_by)
            if have < qty:
                raise SimError(f"{sku}: only {have} sellable", 409)
            price = listing.price(self.config.marketplace_id) or (Decimal("0"), "USD")
            lines.append(
                OrderLine(
                    item_id=self.ids.digits(14),
                    sku=sku,
                    asin=listing.asin,
                    title=listing.title,
                    qty=qty,
                    unit_price=price[0],
                    currency=price[1],
                )
            )
        now = self.clock.stamp()
        order_id = spec.get("order_id") or self.ids.order_id()
        if order_id in self.orders:
            raise SimError(f"order {order_id} exists", 409)
        order = SimOrder(order_id, now, now, status, fulfilled_by, self.config.marketplace_id, lines)
        self.orders[order_id] = order
        # Amazon takes the units off the offer when the order is placed, paid or not.
        for line in lines:
            self._move_stock(line.sku, fulfilled_by, -line.qty, reserve=True)
        self.notifier.publish(order_change(self.config, order, "Order created", now))
        return order

    def _sellable(self, listing: Listing, fulfilled_by: str) -> int:
        if fulfilled_by == "AMAZON":
            item = self.fba.get(listing.sku)
            return item.fulfillable if item else 0
        return listing.mfn_quantity() or 0

    def _move_stock(self, sku: str, fulfilled_by: str, delta: int, reserve: bool) -> None:
        if fulfilled_by == "AMAZON":
            item = self.fba[sku]
            item.fulfillable += delta
            if reserve:
                item.reserved -= delta
            item.updated = self.clock.stamp()
            return
        listing = self.listings[sku]
        before = self._observable(listing)
        listing.set_mfn_quantity(max(0, (before[0] or 0) + delta))
        self._touch(listing, before)

    def change_order(self, order_id: str, action: str) -> SimOrder:
        """pay / ship / ship_partial / cancel, or a FULFILLMENT_STATUSES value set directly."""
        order = self.orders.get(order_id)
        if order is None:
            raise SimError(f"no order {order_id}", 404)
        if order.status not in OPEN_STATUSES:
            raise SimError(f"order {order_id} is {order.status} already", 409)
        if action == "pay":
            if order.status not in ("PENDING", "PENDING_AVAILABILITY"):
                raise SimError("only a pending order can be paid", 409)
            order.status = "UNSHIPPED"
        elif action in ("ship", "ship_partial"):
            if order.status not in ("UNSHIPPED", "PARTIALLY_SHIPPED"):
                raise SimError("only an unshipped order can ship", 409)
            self._ship(order, partial=action == "ship_partial")
        elif action == "cancel":
            order.status = "CANCELLED"
            for line in order.lines:
                self._move_stock(line.sku, order.fulfilled_by, line.qty - line.shipped, reserve=True)
        elif action in FULFILLMENT_STATUSES:
            order.status = action
        else:
            raise SimError(f"unknown action {action!r}")
        self._bump(order)
        self.notifier.publish(order_change(self.config, order, "Order status changed", order.updated))
        return order

    def _ship(self, order: SimOrder, partial: bool) -> None:
        for line in order.lines:
            left = line.qty - line.shipped
            step = min(left, 1) if partial else left
            line.shipped += step
            if order.fulfilled_by == "AMAZON" and step:
                item = self.fba[line.sku]
                item.reserved = max(0, item.reserved - step)
                item.updated = self.clock.stamp()
            if partial and step:
                break
        done = all(line.shipped >= line.qty for line in order.lines)
        order.status = "SHIPPED" if done else "PARTIALLY_SHIPPED"

    def _bump(self, order: SimOrder) -> None:
        # lastUpdatedTime strictly increases, so every change is a distinct version.
        order.updated = self.clock.stamp()

    # --- outages --------------------------------------------------------------------------------

    async def set_outage(self, mode: OutageMode, for_seconds: float | None = None) -> None:
        """Switch the outage mode; with `for_seconds`, switch back to UP afterwards."""
        self.mode = mode
        if self.server is not None:
            await self.server.set_mode(mode)
        if for_seconds:
            self._later(for_seconds, self._restore)

    def _restore(self) -> None:
        task = asyncio.get_running_loop().create_task(self.set_outage(OutageMode.UP))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- control-plane views ---------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything, as JSON, for /_sim/state."""
        market = self.config.marketplace_id
        return {
            "mode": self.mode.value,
            "now": self.clock.now().isoformat(),
            "pending_patches": self.pending_patches,
            "listings": {
                sku: {
                    "quantity": lst.mfn_quantity(),
                    "price": str(p[0]) if (p := lst.price(market)) else None,
                    "fba": lst.fba,
                    "status": lst.status(market),
                    "product_type": lst.product_type,
                }
                for sku, lst in self.listings.items()
            },
            "orders": {o.order_id: o.to_api({"FULFILLMENT"}) for o in self.orders.values()},
            "fba": {sku: item.to_api(details=True) for sku, item in self.fba.items()},
            "counters": self.counters.as_json(),
        }

    async def close(self) -> None:
        """Cancel scheduled patch applications and pending deliveries."""
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for task in list(self._background):
            task.cancel()
        await self.notifier.close()
