"""The real-available formula, kits and per-listing targets (DESIGN.md §4)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from syncd.domain.models import Availability, ListingRule, StockFigures


def real_available(figures: StockFigures) -> Availability:
    """`on_hand − committed − reserved − buffer`, floored at 0; oversold when the first three go negative."""
    free = figures.on_hand - figures.committed - figures.reserved
    return Availability(available=max(0, free - figures.buffer), oversold_by=max(0, -free))


def kit_available(components: Iterable[tuple[int, int]]) -> int:
    """A kit's available: min over (component available, qty per kit) of floor(available / qty).

    A kit with no components can never be sold, so its available is 0.
    """
    best: int | None = None
    for available, qty in components:
        if qty <= 0:
            raise ValueError("kit component quantity must be positive")
        each = max(0, available) // qty
        best = each if best is None else min(best, each)
    return best or 0


def listing_target(available: int, rule: ListingRule, oversold: bool = False) -> int:
    """What one listing should show: `min(cap, floor(available × share))`, 0 when paused or oversold."""
    if rule.paused or oversold or available <= 0:
        return 0
    shown = math.floor(available * rule.share + 1e-9)
    if rule.cap is not None:
        shown = min(shown, rule.cap)
    return max(0, shown)

