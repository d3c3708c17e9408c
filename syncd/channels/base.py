"""The contract every platform adapter meets, and the only errors it may raise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from syncd.capture.events import Event
from syncd.domain.models import Field


class ChannelError(Exception):
    """Base of the typed errors adapters raise; the core only ever sees these."""


class RateLimited(ChannelError):
    """429: try again after `retry_after` seconds (None when the platform gives no hint)."""

    def __init__(self, message: str = "rate limited", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Transient(ChannelError):
    """5xx, timeout, connection refused: retry with backoff."""

    def __init__(self, message: str = "transient failure", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthExpired(ChannelError):
    """The access token was refused; refresh it and retry."""


class Permanent(ChannelError):
    """A request that will never succeed as sent (invalid listing, 4xx other than 429)."""


@dataclass(frozen=True, slots=True)
class ListingRef:
    """How a channel names one listing."""

    external_id: str
    variation_id: str | None = None
    sku: str = ""  # master SKU, for logs and for channels keyed by seller SKU


@dataclass(frozen=True, slots=True)
class PollResult:
    """Events seen by one poll, and the cursor to resume from once they are durable."""

    events: list[Event]
    cursor: str | None
    # The newest moment up to which this poll is sure it saw everything.
    complete_through: datetime | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """A listing as read back from the channel."""

    ref: ListingRef
    quantity: int | None
    price: str | None = None
    status: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Channel(Protocol):
    """What the push workers and pollers need from a platform."""

    name: str

    async def push(self, ref: ListingRef, field: Field, value: str) -> None:
        """Set one listing attribute to `value` (idempotent: "set quantity to N")."""
        ...

    async def read_listings(self, refs: Sequence[ListingRef]) -> list[Observation]:
        """Read back what the channel currently shows for these listings."""
        ...

    async def poll(self, resource: str, cursor: str | None) -> PollResult:
        """Fetch what changed in `resource` ("orders", "stock", ...) since `cursor`."""
        ...

    async def close(self) -> None:
        """Release sessions and tasks."""
        ...


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """OAuth tokens of one channel; `refresh_token` may rotate on every refresh (MercadoLibre)."""

    refresh_token: str = field(repr=False)
    access_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None


class TokenStore(Protocol):
    """Durable token storage; `save` returns only once the record is committed."""

    async def load(self, channel: str) -> TokenRecord | None:
        """The last saved record, or None before the first refresh."""
        ...

    async def save(self, channel: str, record: TokenRecord) -> None:
        """Commit `record` durably before returning."""
        ...


class WebhookReceiver(Protocol):
    """Turns an authenticated webhook delivery into events (facts or pointers to fetch)."""

    def authenticate(self, path_secret: str | None, headers: dict[str, str], body: bytes) -> bool:
        """True when the delivery carries valid credentials (constant-time compare)."""
        ...

    def parse(self, headers: dict[str, str], body: bytes, now: datetime) -> list[Event]:
        """Normalize a delivery; raise ValueError with a reason when it is malformed."""
        ...


class Fetcher(Protocol):
    """Resolves a pointer notification by fetching the resource with our own token."""

    async def fetch(self, topic: str, resource: str) -> list[Event]:
        """Events for the current state of `resource`."""
        ...
