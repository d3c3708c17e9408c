"""SP-API wire bodies syncd reads, as pydantic models named and cased as Amazon's own models.

Only the fields syncd uses are declared; everything else Amazon sends is ignored, so a new field
on Amazon's side never breaks parsing. Field names keep Amazon's casing (camelCase for the REST
APIs, PascalCase for notifications) so a reader can hold them against the published models.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


# --- Login with Amazon ---------------------------------------------------------------------------


class LwaToken(_Wire):
    """`POST /auth/o2/token` success body."""

    access_token: str = Field(min_length=1)
    token_type: str = "bearer"
    expires_in: int = Field(gt=0)
    refresh_token: str | None = None


# --- Orders 2026-01-01 ---------------------------------------------------------------------------


class Money(_Wire):
    """`{amount, currencyCode}`; `amount` is a decimal string."""

    amount: str
    currencyCode: str


class ItemPrice(_Wire):
    """`orderItems[].product.price`."""

    unitPrice: Money | None = None


class ItemProduct(_Wire):
    """`orderItems[].product`."""

    asin: str | None = None
    sellerSku: str | None = None
    title: str | None = None
    price: ItemPrice | None = None


class ItemFulfillment(_Wire):
    """`orderItems[].fulfillment`, present only with `includedData=FULFILLMENT`."""

    quantityFulfilled: int | None = None
    quantityUnfulfilled: int | None = None


class OrderItem(_Wire):
    """One order line."""

    orderItemId: str
    quantityOrdered: int
    product: ItemProduct
    fulfillment: ItemFulfillment | None = None


class OrderFulfillment(_Wire):
    """`order.fulfillment`, present only with `includedData=FULFILLMENT`."""

    fulfillmentStatus: str
    fulfilledBy: str | None = None


class SalesChannel(_Wire):
    """`order.salesChannel`: `channelName` is AMAZON / NON_AMAZON, the site is `marketplaceName`."""

    channelName: str
    marketplaceId: str | None = None
    marketplaceName: str | None = None


class Order(_Wire):
    """An order as `searchOrders` / `getOrder` return it."""

    orderId: str
    createdTime: str
    lastUpdatedTime: str
    salesChannel: SalesChannel
    orderItems: list[OrderItem]
    fulfillment: OrderFulfillment | None = None


class OrdersPagination(_Wire):
    """`pagination` of `searchOrders`; absent on the last page."""

    nextToken: str | None = None


class SearchOrdersResponse(_Wire):
    """`GET /orders/2026-01-01/orders`."""

    orders: list[Order]
    pagination: OrdersPagination | None = None
    lastUpdatedBefore: str | None = None
    createdBefore: str | None = None


class GetOrderResponse(_Wire):
    """`GET /orders/2026-01-01/orders/{orderId}`."""

    order: Order


# --- Listings Items 2021-08-01 -------------------------------------------------------------------


class ItemSummary(_Wire):
    """`summaries[]` of a listings item (camelCase, unlike the attributes)."""

    marketplaceId: str
    productType: str
    status: list[str] = Field(default_factory=list)
    asin: str | None = None
    createdDate: str | None = None
    lastUpdatedDate: str | None = None


class FulfillmentAvailability(_Wire):
    """`fulfillmentAvailability[]`: `DEFAULT` is merchant-fulfilled, `AMAZON_*` is FBA."""

    fulfillmentChannelCode: str
    quantity: int | None = None


class ListingIssue(_Wire):
    """An issue on a listing or a submission."""

    code: str
    message: str
    severity: str
    categories: list[str] = Field(default_factory=list)
    attributeNames: list[str] = Field(default_factory=list)


class ListingsItem(_Wire):
    """`getListingsItem` body and `searchListingsItems` items."""

    sku: str
    summaries: list[ItemSummary] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)
    fulfillmentAvailability: list[FulfillmentAvailability] = Field(default_factory=list)
    issues: list[ListingIssue] = Field(default_factory=list)


class ListingsPagination(_Wire):
    """`pagination` of `searchListingsItems`; the last page has no `nextToken`."""

    nextToken: str | None = None
    previousToken: str | None = None


class ItemSearchResults(_Wire):
    """`GET /listings/2021-08-01/items/{sellerId}`."""

    numberOfResults: int
    items: list[ListingsItem]
    pagination: ListingsPagination | None = None


class SubmissionResponse(_Wire):
    """`patchListingsItem` body: HTTP 200 even when the submission is `INVALID`."""

    sku: str
    status: str
    submissionId: str
    issues: list[ListingIssue] = Field(default_factory=list)


# --- FBA Inventory v1 ----------------------------------------------------------------------------


class InventoryDetails(_Wire):
    """`inventoryDetails`, present only with `details=true`."""

    fulfillableQuantity: int | None = None


class InventorySummary(_Wire):
    """One seller SKU's FBA inventory in the requested marketplace."""

    sellerSku: str | None = None
    asin: str | None = None
    fnSku: str | None = None
    lastUpdatedTime: str | None = None
    totalQuantity: int | None = None
    inventoryDetails: InventoryDetails | None = None


class InventoryPayload(_Wire):
    """`payload` of `getInventorySummaries`."""

    inventorySummaries: list[InventorySummary] = Field(default_factory=list)


class InventoryPagination(_Wire):
    """`pagination` of `getInventorySummaries`; `nextToken` lives 30 s."""

    nextToken: str | None = None


class InventorySummariesResponse(_Wire):
    """`GET /fba/inventory/v1/summaries` (wrapped in `payload`, unlike the newer APIs)."""

    payload: InventoryPayload
    pagination: InventoryPagination | None = None


# --- Notifications (PascalCase envelope, payloadVersion 1.0) -------------------------------------


class NotificationMeta(_Wire):
    """`NotificationMetadata`; `NotificationId` is the dedupe key across SQS and EventBridge."""

    NotificationId: str = Field(min_length=1)
    PublishTime: str | None = None
    SubscriptionId: str | None = None
    ApplicationId: str | None = None


class SpNotification(_Wire):
    """An SP-API notification (the SQS message body, or an EventBridge event's `detail`)."""

    NotificationVersion: str | None = None
    NotificationType: str = Field(min_length=1)
    PayloadVersion: str | None = None
    EventTime: str
    Payload: dict[str, Any]
    NotificationMetadata: NotificationMeta


class ChangeTrigger(_Wire):
    """What caused an ORDER_CHANGE; `TimeOfOrderChange` may be null."""

    TimeOfOrderChange: str | None = None
    ChangeReason: str | None = None


class OrderChangeNotification(_Wire):
    """`Payload.OrderChangeNotification` of ORDER_CHANGE."""

    SellerId: str
    AmazonOrderId: str = Field(min_length=1)
    OrderChangeType: str
    OrderChangeTrigger: ChangeTrigger | None = None


class MfnQuantityChange(_Wire):
    """`Payload` of LISTINGS_ITEM_MFN_QUANTITY_CHANGE."""

    SellerId: str
    FulfillmentChannelCode: str
    Sku: str = Field(min_length=1)
    Quantity: int = Field(ge=0)


class EventBridgeEvent(_Wire):
    """The event an EventBridge API destination POSTs; `detail` is the SP-API notification."""

    version: str | None = None
    id: str | None = None
    detail_type: str | None = Field(default=None, alias="detail-type")
    source: str | None = None
    time: str | None = None
    detail: dict[str, Any]
