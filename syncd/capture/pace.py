"""How often to poll a resource: more while push deliveries have gone quiet, less while they flow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Resources whose changes also arrive by push (webhooks, SQS), so polling them is only a backstop.
PUSHED_RESOURCES = frozenset({"orders", "missed_feeds", "shipments"})


@dataclass(frozen=True, slots=True)
class Pace:
    """The polling rule for one (channel, resource) with a configured base interval."""

    base: float
    pushed: bool  # the resource also arrives by push on this channel
    healthy_factor: float = 2.0  # poll this much less often while push is healthy
    quiet_factor: float = 0.5  # and this much more often once it has gone quiet
    quiet_after_bases: float = 3.0  # push counts as quiet after this many base intervals without a delivery
    # Never wait longer than this between polls: polls are what keep "last success" honest, so the
    # slowest pace must stay well inside the channel's lag threshold.
    ceiling: float | None = None

    @property
    def tick(self) -> float:
        """The scheduler's interval: the shortest interval this rule can ask for."""
        return self.base * self.quiet_factor if self.pushed else self.base

    def interval(self, now: datetime, last_delivery: datetime | None) -> float:
        """Seconds that should separate two polls right now."""
        if not self.pushed:
            return self.base
        if last_delivery is not None and (now - last_delivery).total_seconds() < self.base * self.quiet_after_bases:
            relaxed = self.base * self.healthy_factor
            return min(relaxed, max(self.base, self.ceiling)) if self.ceiling is not None else relaxed
        return self.base * self.quiet_factor
