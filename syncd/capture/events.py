"""The normalized `Event`: what every webhook, poll, 3PL report and seller action turns into."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from syncd.domain.models import OrderState

NonEmpty = Annotated[str, Field(min_length=1, max_length=200)]


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderLineIn(_Body):
    """One ordered line as the channel reported it; resolved to a SKU through the catalog."""

    line_id: NonEmpty
    external_id: NonEmpty
    variation_id: str | None = None
    qty: int = Field(ge=1)
    unit_price: Decimal | None = None


class OrderUpsert(_Body):
    """A channel's view of an order at `last_updated`."""

    kind: Literal["order"] = "order"
    channel: NonEmpty
    order_id: NonEmpty
    state: OrderState
    last_updated: AwareDatetime
    created_at: AwareDatetime | None = None
    lines: list[OrderLineIn] = Field(min_length=1)
    # Payment-pending holds lapse at this time unless the order moves on.
    hold_until: AwareDatetime | None = None


class StockCount(_Body):
    """A physical count of (sku, location) by `source` as of a moment."""

    kind: Literal["count"] = "count"
    sku: NonEmpty
    location: NonEmpty
    qty: int = Field(ge=0)
    as_of: AwareDatetime
    source: NonEmpty


class Receipt(_Body):
    """Goods received into a location."""

    kind: Literal["receipt"] = "receipt"
    sku: NonEmpty
    location: NonEmpty
    qty: int = Field(ge=1)
    ref: NonEmpty
    at: AwareDatetime


class Shipment(_Body):
    """Goods that left a location; `order_ref` ("channel:order_id") ties it to a sale."""

    kind: Literal["shipment"] = "shipment"
    sku: NonEmpty
    location: NonEmpty
    qty: int = Field(ge=1)
    ref: NonEmpty
    at: AwareDatetime
    order_ref: str | None = None


class Adjustment(_Body):
    """A manual change of on hand (damage, found stock), with its reason."""

    kind: Literal["adjustment"] = "adjustment"
    sku: NonEmpty
    location: NonEmpty
    delta: int
    reason: NonEmpty
    at: AwareDatetime


class PriceSet(_Body):
    """The seller sets a price, for every listing of a product or one channel's."""

    kind: Literal["price"] = "price"
    sku: NonEmpty
    price: Decimal = Field(gt=0, max_digits=12, decimal_places=2)
    channel: str | None = None


class ListingPause(_Body):
    """The seller pauses or resumes one listing."""

    kind: Literal["listing_status"] = "listing_status"
    channel: NonEmpty
    external_id: NonEmpty
    variation_id: str | None = None
    paused: bool


class ListingObservation(_Body):
    """What a channel says a listing holds right now: an observation, never a count."""

    kind: Literal["observation"] = "observation"
    channel: NonEmpty
    external_id: NonEmpty
    variation_id: str | None = None
    quantity: int | None = Field(default=None, ge=0)
    price: Decimal | None = None
    status: str | None = None
    at: AwareDatetime


class Notification(_Body):
    """A pointer delivery (MercadoLibre, Amazon ORDER_CHANGE): stored first, fetched after."""

    kind: Literal["notification"] = "notification"
    channel: NonEmpty
    topic: NonEmpty
    resource: NonEmpty
    sent_at: AwareDatetime | None = None


EventBody = Annotated[
    OrderUpsert
    | StockCount
    | Receipt
    | Shipment
    | Adjustment
    | PriceSet
    | ListingPause
    | ListingObservation
    | Notification,
    Field(discriminator="kind"),
]


class Event(BaseModel):
    """One captured fact with where it came from and the key that makes redelivery a no-op."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dedupe_key: NonEmpty
    source: NonEmpty  # "amazon", "mercadolibre", "threepl", "manual", ...
    received_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    body: EventBody
    raw: dict[str, Any] | None = None


EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
