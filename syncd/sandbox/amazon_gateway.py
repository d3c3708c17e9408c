"""What the simulated service edge keeps besides the seller's data: tokens, usage buckets, counters, ids."""

from __future__ import annotations

import random
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from syncd.sandbox.amazon_state import SimClock, SimConfig
from syncd.sandbox.common import TokenBucket


class Ids:
    """Seeded identifiers shaped like Amazon's."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def digits(self, n: int) -> str:
        """n random decimal digits."""
        return "".join(str(self.rng.randrange(10)) for _ in range(n))

    def order_id(self) -> str:
        """3-7-7 order id."""
        return f"{self.digits(3)}-{self.digits(7)}-{self.digits(7)}"

    def asin(self) -> str:
        """B0 + 8 characters."""
        return "B0" + "".join(self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(8))


@dataclass
class Counters:
    """Calls and 429s per operation, token grants, notification delivery outcomes."""

    calls: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    lwa: Counter[str] = field(default_factory=Counter)
    notifications: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, dict[str, int]]:
        """JSON for /_sim/counters."""
        return {
            "calls": dict(self.calls),
            "throttled": dict(self.throttled),
            "statuses": dict(self.statuses),
            "lwa": dict(self.lwa),
            "notifications": dict(self.notifications),
        }


class Tokens:
    """LWA access tokens issued by the simulator and when each expires (simulator clock)."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.issued: dict[str, datetime] = {}

    def issue(self, lifetime: float) -> str:
        """A new `Atza|` token valid for `lifetime` seconds."""
        token = "Atza|" + secrets.token_urlsafe(48)
        self.issued[token] = self.clock.now() + timedelta(seconds=lifetime)
        return token

    def check(self, token: str | None) -> str | None:
        """None when valid, else the `details` Amazon gives for the refusal."""
        if not token:
            return "Access token is missing in the request header."
        expires = self.issued.get(token)
        if expires is None:
            return "The access token you provided is revoked, malformed or invalid."
        if self.clock.now() >= expires:
            return "The access token you provided has expired."
        return None

    def expire_all(self) -> int:
        """Expire every issued token now (as if an hour had passed for them)."""
        now = self.clock.now()
        for token in self.issued:
            self.issued[token] = now
        return len(self.issued)


class Buckets:
    """One token bucket per operation, built from the current plans."""

    def __init__(self, config: SimConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self.buckets: dict[str, TokenBucket] = {}

    def take(self, op: str) -> bool:
        """Spend a token of `op`'s bucket; operations without a plan are not limited."""
        plan = self.config.plans.get(op)
        if plan is None:
            return True
        bucket = self.buckets.get(op)
        if bucket is None or (bucket.rate, bucket.burst) != plan:
            bucket = self.buckets[op] = TokenBucket(plan[0], plan[1], clock=self.clock)
        return bucket.take()

    def reset(self) -> None:
        """Refill every bucket (after a plan change)."""
        self.buckets.clear()
