"""Domain values and the states they move through."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class OrderState(StrEnum):
    """A channel order's normalized state; each platform's mapping lives in its adapter."""

    PENDING = "pending"  # payment pending: reserves stock until it expires
    PAID = "paid"  # confirmed, not shipped: commits stock
    SHIPPED = "shipped"  # left the building: on hand moves, commitment released
    CANCELLED = "cancelled"  # releases whatever it held


class LineState(StrEnum):
    """What an order line does to stock."""

    RESERVED = "reserved"
    COMMITTED = "committed"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


LINE_STATE_FOR_ORDER: dict[OrderState, LineState] = {
    OrderState.PENDING: LineState.RESERVED,
    OrderState.PAID: LineState.COMMITTED,
    OrderState.SHIPPED: LineState.SHIPPED,
    OrderState.CANCELLED: LineState.CANCELLED,
}


class Field(StrEnum):
    """A listing attribute syncd pushes."""

    QUANTITY = "quantity"
    PRICE = "price"
    STATUS = "status"


class ListingStatus(StrEnum):
    """Whether the seller wants a listing selling."""

    ACTIVE = "active"
    PAUSED = "paused"


class MovementReason(StrEnum):
    """Why on hand changed; every change has a ledger row with one of these."""

    SHIPMENT = "shipment"
    RECEIPT = "receipt"
    COUNT = "count"  # drift written when an accepted count rebases on hand
    MANUAL = "manual"


class AlertKind(StrEnum):
    """What the board and sinks are told about."""

    OVERSELL = "oversell"
    DRIFT = "drift"
    STALE_CHANNEL = "stale_channel"
    DEAD_PUSH = "dead_push"
    REORDER = "reorder"
    COUNT_REJECTED = "count_rejected"
    UNKNOWN_LISTING = "unknown_listing"
    FETCH_FAILED = "fetch_failed"


class ChannelHealth(StrEnum):
    """The honest state of one channel."""

    OK = "ok"
    LAGGING = "lagging"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class StockFigures:
    """What determines a product's available in one pool."""

    on_hand: int
    committed: int
    reserved: int
    buffer: int


@dataclass(frozen=True, slots=True)
class Availability:
    """The real available and, when negative before the floor, by how much it is oversold."""

    available: int
    oversold_by: int

    @property
    def oversold(self) -> bool:
        """True when more is promised than is on hand."""
        return self.oversold_by > 0


@dataclass(frozen=True, slots=True)
class ListingRule:
    """How much of a pool's available one listing may show."""

    share: float = 1.0
    cap: int | None = None
    paused: bool = False
