"""MercadoLibre simulator primitives: settings, a movable clock, the platform's error bodies, ids."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

# Order dates carry the site's local offset (`…T19:15:50.000-04:00` in every captured example).
ORDER_TZ = timezone(timedelta(hours=-4))

# Operations the simulator rate-limits separately (ML limits per application and endpoint).
OPERATIONS = (
    "oauth_token",
    "items_get",
    "items_put",
    "items_multiget",
    "items_search",
    "orders_get",
    "orders_search",
    "shipments_get",
    "user_products_get",
    "missed_feeds",
)

# ~8 attempts spread over about an hour, the retry window APIS.md §2.3 reports.
DEFAULT_RETRY_DELAYS = (60.0, 120.0, 240.0, 480.0, 600.0, 900.0, 1200.0)


@dataclass
class SimConfig:
    """Identity of the simulated seller/app and every timing knob the tests shorten."""

    user_id: int = 146322322
    application_id: int = 5503910054141466
    client_id: str = "5503910054141466"
    client_secret: str = "sim-client-secret"
    site_id: str = "MLM"
    currency_id: str = "MXN"
    # The refresh token the seller's first authorization produced; None draws one from `seed`.
    initial_refresh_token: str | None = None
    access_ttl_seconds: float = 21600.0
    refresh_ttl_seconds: float = 180 * 86400.0  # unused refresh tokens lapse after 6 months
    seed: int = 1
    notify_url: str | None = None
    topics: tuple[str, ...] = ("orders_v2", "items", "shipments", "stock-locations")
    notify_timeout_seconds: float = 0.5
    notify_delay_seconds: float = 0.0
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    missed_feeds_retention_seconds: float = 2 * 86400.0
    # op -> (tokens per second, burst); ML publishes no numbers, so these are generous defaults.
    rate_limits: dict[str, tuple[float, float]] = field(default_factory=lambda: dict.fromkeys(OPERATIONS, (25.0, 50.0)))


class SimClock:
    """Wall-clock UTC plus an offset the control plane can advance (token expiry, retention)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        """The simulated current time (aware, UTC)."""
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        """Move simulated time forward."""
        self.offset += timedelta(seconds=seconds)


class SimError(Exception):
    """An API failure answered with `status` and the platform's JSON `body`."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body.get('error')}")
        self.status = status
        self.body = body


def api_error(status: int, error: str, message: str) -> SimError:
    """The generic ML error body `{message, error, status, cause: []}`."""
    return SimError(status, {"message": message, "error": error, "status": status, "cause": []})


def validation_error(code: str, message: str, references: list[str]) -> SimError:
    """A 400 `validation_error` with the structured cause seen in captures."""
    cause = {
        "department": "items",
        "cause_id": 323,
        "type": "error",
        "code": code,
        "references": references,
        "message": message,
    }
    body = {"message": "Validation error", "error": "validation_error", "status": 400, "cause": [cause]}
    return SimError(400, body)


def iso_z(when: datetime) -> str:
    """UTC with milliseconds and `Z` (item dates, notification `sent`/`received`)."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_local(when: datetime) -> str:
    """Local offset with milliseconds (order and shipment dates)."""
    return when.astimezone(ORDER_TZ).isoformat(timespec="milliseconds")


def money(value: float) -> int | float:
    """A JSON amount as ML writes it: `499`, not `499.0`."""
    return int(value) if float(value).is_integer() else round(value, 2)


def parse_iso(value: str) -> datetime:
    """Parse a query-string date; naive values are taken as UTC. Raises ValueError."""
    parsed = datetime.fromisoformat(value.strip().replace(" ", "+"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class IdSource:
    """Deterministic ids in the platform's formats (a seeded RNG plus counters)."""

    def __init__(self, seed: int, site_id: str) -> None:
        self.rng = random.Random(seed)
        self.site_id = site_id
        self._counters = {
            "item": 1_300_000_000,
            "variation": 174_997_747_229,
            "order": 2_000_010_000_000_000,
            "shipment": 40_000_000_000,
            "up": 206_642_488,
            "pack": 2_000_005_000_000_000,
        }

    def _next(self, kind: str) -> int:
        self._counters[kind] += 1 + self.rng.randrange(7)
        return self._counters[kind]

    def item(self) -> str:
        """`MLM1300000004`."""
        return f"{self.site_id}{self._next('item')}"

    def variation(self) -> int:
        """A numeric variation id."""
        return self._next("variation")

    def order(self) -> int:
        """A 16-digit order id."""
        return self._next("order")

    def pack(self) -> int:
        """A pack id (every purchase has one since 2025)."""
        return self._next("pack")

    def shipment(self) -> int:
        """An 11-digit shipment id."""
        return self._next("shipment")

    def user_product(self) -> str:
        """`MLMU206642490`."""
        return f"{self.site_id}U{self._next('up')}"

    def hex(self, length: int) -> str:
        """Lower-case hex digits."""
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(length))
