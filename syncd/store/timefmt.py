"""How times are stored: ISO-8601 in UTC, which sorts correctly as text."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """Store form of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse(text: str | None) -> datetime | None:
    """Aware datetime from the store form (None stays None)."""
    return datetime.fromisoformat(text) if text else None
