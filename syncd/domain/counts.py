"""Which physical count wins: source priority, then timestamp, then the rebase rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class CountVerdict(StrEnum):
    """The outcome of judging one count."""

    ACCEPTED = "accepted"
    STALE = "stale"  # not newer than an accepted count of equal or higher priority
    OUTRANKED = "outranked"  # a higher-priority source reported within the authority window
    UNKNOWN_SOURCE = "unknown_source"


@dataclass(frozen=True, slots=True)
class AcceptedCount:
    """The last accepted count from one source for one (sku, location)."""

    source: str
    as_of: datetime


def priority_of(source: str, sources: list[str]) -> int | None:
    """Rank of `source` in a location's list (0 is highest); None when the source may not count it."""
    return sources.index(source) if source in sources else None


def judge_count(
    source: str,
    as_of: datetime,
    sources: list[str],
    history: list[AcceptedCount],
    authority_window: timedelta,
) -> CountVerdict:
    """Accept a count only if newer than every equal-or-higher-priority count and not outranked.

    `history` holds, per source, the last accepted count for this (sku, location).
    Outranking is judged against the count's own `as_of`, so replaying the same reports in any
    order gives the same verdicts.
    """
    rank = priority_of(source, sources)
    if rank is None:
        return CountVerdict.UNKNOWN_SOURCE
    for prior in history:
        prior_rank = priority_of(prior.source, sources)
        if prior_rank is None:
            continue
        if prior_rank <= rank and as_of <= prior.as_of:
            return CountVerdict.STALE
        if prior_rank < rank and as_of - prior.as_of < authority_window:
            return CountVerdict.OUTRANKED
    return CountVerdict.ACCEPTED


def rebased_on_hand(count: int, movements_after: list[int]) -> int:
    """`on_hand = count + Σ movements after as_of`: movements the count did not see are kept."""
    return count + sum(movements_after)
