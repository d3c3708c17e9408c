"""The shipment already resolved for each order, so the orders backstop does not ask for it every poll.

An order says nothing about dispatch except its `delivered` tag: `shipping` carries only the id in
the new format (APIS_EVIDENCE §2.2), so telling `paid` from `shipped` takes `GET /shipments/{id}`.
The backstop re-reads every order updated inside its overlap window on every poll; asking for each
of their shipments each time cost several calls per sale. The memo keeps, per order, the order's
`last_updated` and the shipment read for it. While that `last_updated` stands the backstop reuses
the shipment, and so emits exactly the event (and dedupe key) it emitted before. A shipment that
can still move is read again after `recheck`, so dispatch whose notification was lost still shows
up through the backstop, only later. Notification fetches always read fresh and refresh the memo.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from syncd.channels.mercadolibre.mapping import SETTLED_SHIPMENTS
from syncd.channels.mercadolibre.models import Order, Shipment

MEMO_SIZE = 5000  # orders; more than an overlap window of a busy seller's orders
SHIPMENT_RECHECK = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class _Known:
    """A shipment as read while the order stood at `order_updated`."""

    order_updated: datetime
    shipment: Shipment
    read_at: datetime


class ShipmentMemo:
    """A bounded LRU of order id → (order last_updated, shipment, when it was read)."""

    def __init__(self, size: int = MEMO_SIZE, recheck: timedelta = SHIPMENT_RECHECK) -> None:
        self.size = size
        self.recheck = recheck
        self._known: OrderedDict[int, _Known] = OrderedDict()

    def recall(self, order: Order, now: datetime) -> Shipment | None:
        """The shipment to use for `order` without asking, or None when it has to be read."""
        known = self._known.get(order.id)
        if known is None or known.order_updated != order.last_updated:
            return None
        if known.shipment.status not in SETTLED_SHIPMENTS and now - known.read_at >= self.recheck:
            return None
        self._known.move_to_end(order.id)
        return known.shipment

    def remember(self, order: Order, shipment: Shipment, read_at: datetime) -> None:
        """Store a shipment read for `order` (asked for at `read_at`); a later read of it is kept."""
        known = self._known.get(order.id)
        if known is not None and known.order_updated == order.last_updated and known.read_at > read_at:
            return  # a concurrent, newer read already answered for this order version
        self._known[order.id] = _Known(order.last_updated, shipment, read_at)
        self._known.move_to_end(order.id)
        while len(self._known) > self.size:
            self._known.popitem(last=False)
