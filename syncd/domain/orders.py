"""Order-update ordering and what each line state does to stock."""

from __future__ import annotations

from datetime import datetime

from syncd.domain.models import LineState


def update_applies(incoming: datetime, stored: datetime | None) -> bool:
    """An order update applies only if its source `last_updated` is newer than the stored one."""
    return stored is None or incoming > stored


def ships_now(old: LineState | None, new: LineState) -> bool:
    """True when this transition is the one that moves on hand out of the building."""
    return new is LineState.SHIPPED and old is not LineState.SHIPPED
