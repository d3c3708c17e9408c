"""Honest per-channel health from what the store records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from syncd.domain.models import ChannelHealth


@dataclass(frozen=True, slots=True)
class ChannelFacts:
    """What the store knows about one channel at `now`."""

    last_success: datetime | None
    started_at: datetime
    consecutive_failures: int
    oldest_pending: datetime | None
    lag_threshold_seconds: float
    down_after_failures: int
    # Since when a listing has shown something other than its confirmed target (read-back).
    unmatched_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class ChannelVerdict:
    """The state shown for a channel and the lag it is based on."""

    state: ChannelHealth
    lag_seconds: float
    oldest_pending_seconds: float
    unmatched_seconds: float = 0.0


def judge_channel(facts: ChannelFacts, now: datetime) -> ChannelVerdict:
    """ok / lagging / down: never ok while data is older than the threshold or pushes wait too long.

    Before the first success the lag counts from start-up, so a channel that never worked turns
    lagging instead of looking fresh.
    """
    since = facts.last_success or facts.started_at
    lag = max(0.0, (now - since).total_seconds())
    pending = max(0.0, (now - facts.oldest_pending).total_seconds()) if facts.oldest_pending else 0.0
    unmatched = max(0.0, (now - facts.unmatched_since).total_seconds()) if facts.unmatched_since else 0.0
    if facts.consecutive_failures >= facts.down_after_failures:
        state = ChannelHealth.DOWN
    elif max(lag, pending, unmatched) > facts.lag_threshold_seconds:
        state = ChannelHealth.LAGGING
    else:
        state = ChannelHealth.OK
    return ChannelVerdict(state=state, lag_seconds=lag, oldest_pending_seconds=pending, unmatched_seconds=unmatched)
