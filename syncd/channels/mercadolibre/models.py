"""MercadoLibre API bodies syncd reads, parsed defensively (unknown fields ignored)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class _Api(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class TokenResponse(_Api):
    """`POST /oauth/token` answer; the tokens are kept out of repr so they never reach a log."""

    access_token: str = Field(min_length=1, repr=False)
    refresh_token: str = Field(min_length=1, repr=False)
    expires_in: float = Field(gt=0)
    token_type: str = "bearer"
    user_id: int | None = None
    scope: str | None = None


class NotificationBody(_Api):
    """A pointer notification; `_id` is not guaranteed and `user_id` is sometimes a string."""

    id: str | None = Field(default=None, alias="_id")
    resource: str = Field(min_length=1, max_length=300)
    user_id: int
    topic: str = Field(min_length=1, max_length=100)
    application_id: int | None = None
    attempts: int | None = None
    sent: AwareDatetime | None = None
    received: AwareDatetime | None = None


class OrderItemRef(_Api):
    """`order_items[].item`: the listing identity the catalog maps to a SKU."""

    id: str
    variation_id: int | None = None
    seller_sku: str | None = None
    seller_custom_field: str | None = None


class OrderItem(_Api):
    """One ordered line."""

    item: OrderItemRef
    quantity: int = Field(ge=1)
    unit_price: Decimal | None = None


class ShippingRef(_Api):
    """`order.shipping`: only the id in the new order format."""

    id: int | None = None


class Order(_Api):
    """`GET /orders/{id}` and each `/orders/search` result."""

    id: int
    status: str
    date_created: AwareDatetime | None = None
    last_updated: AwareDatetime
    order_items: list[OrderItem] = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)
    shipping: ShippingRef | None = None
    pack_id: int | None = None


class Shipment(_Api):
    """`GET /shipments/{id}` (x-format-new): where dispatch shows up."""

    id: int
    order_id: int | None = None
    status: str
    substatus: str | None = None
    last_updated: AwareDatetime | None = None


class Paging(_Api):
    """`/orders/search` and `/users/{id}/items/search` paging."""

    total: int = 0
    offset: int = 0
    limit: int = 0


class OrdersPage(_Api):
    """`GET /orders/search`; results stay raw so one odd order cannot sink a page."""

    results: list[dict[str, Any]] = Field(default_factory=list)
    paging: Paging = Field(default_factory=Paging)


class Variation(_Api):
    """An item variation: stock and price live here when the item has variations."""

    id: int
    price: Decimal | None = None
    available_quantity: int = Field(default=0, ge=0)


class VariationRef(_Api):
    """Just a variation's id."""

    id: int


class ItemVariations(_Api):
    """`GET /items/{id}?attributes=id,variations`: the ids a variation PUT must repeat."""

    id: str
    variations: list[VariationRef] = Field(default_factory=list)


class Item(_Api):
    """`GET /items/{id}` and multiget bodies (subset)."""

    id: str
    price: Decimal | None = None
    available_quantity: int | None = Field(default=None, ge=0)
    status: str
    sub_status: list[str] = Field(default_factory=list)
    variations: list[Variation] = Field(default_factory=list)
    last_updated: AwareDatetime | None = None


class MultigetEntry(_Api):
    """One `GET /items?ids=` entry: per-id status code and body."""

    code: int
    body: dict[str, Any] = Field(default_factory=dict)


class ItemsSearchPage(_Api):
    """`GET /users/{id}/items/search`: ids only, plus a scroll id in scan mode."""

    results: list[str] = Field(default_factory=list)
    paging: Paging = Field(default_factory=Paging)
    scroll_id: str | None = None


class FeedRequest(_Api):
    """What ML sent; `data` is the delivered body as a JSON string."""

    data: str | None = None


class FeedResponse(_Api):
    """What the callback answered."""

    http_code: int | None = None


class MissedFeed(_Api):
    """One `/missed_feeds` message."""

    id: str | None = Field(default=None, alias="_id")
    resource: str | None = None
    user_id: int | str | None = None
    topic: str | None = None
    application_id: int | None = None
    attempts: int | None = None
    sent: str | None = None
    received: AwareDatetime | None = None
    request: FeedRequest | None = None
    response: FeedResponse | None = None


class MissedFeedsPage(_Api):
    """`GET /missed_feeds`: only `messages` is known (the paging keys are not published).

    Messages stay raw here and are read one by one, so one odd message cannot hide the others.
    """

    messages: list[Any] = Field(default_factory=list)
