"""Records of the Amazon simulator (listings, orders, FBA stock), their API shapes, clock and knobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

# Default usage plans (rate/s, burst) from Amazon's models, as the real service applies them.
DEFAULT_PLANS: dict[str, tuple[float, float]] = {
    "searchOrders": (0.0056, 20),
    "getOrder": (0.5, 30),
    "getListingsItem": (5.0, 10),
    "patchListingsItem": (5.0, 5),
    "putListingsItem": (5.0, 10),
    "deleteListingsItem": (5.0, 5),
    "searchListingsItems": (5.0, 5),
    "getInventorySummaries": (2.0, 2),
}

FULFILLMENT_STATUSES = (
    "PENDING_AVAILABILITY",
    "PENDING",
    "UNSHIPPED",
    "PARTIALLY_SHIPPED",
    "SHIPPED",
    "CANCELLED",
    "UNFULFILLABLE",
)
# Orders 2026-01-01 status -> the v0 spelling that ORDER_CHANGE notifications still use.
V0_STATUS = {
    "PENDING_AVAILABILITY": "PendingAvailability",
    "PENDING": "Pending",
    "UNSHIPPED": "Unshipped",
    "PARTIALLY_SHIPPED": "PartiallyShipped",
    "SHIPPED": "Shipped",
    "CANCELLED": "Canceled",
    "UNFULFILLABLE": "Unfulfillable",
}
OPEN_STATUSES = {"PENDING_AVAILABILITY", "PENDING", "UNSHIPPED", "PARTIALLY_SHIPPED"}


def iso(moment: datetime) -> str:
    """SP-API timestamp: UTC, milliseconds, `Z`."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> datetime:
    """Parse an ISO-8601 timestamp sent by a client; ValueError if it is not one with a zone."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("timestamp without a zone")
    return parsed.astimezone(UTC)


class SimClock:
    """Wall clock plus an offset the control plane can advance (token expiry, search windows).

    Times are whole milliseconds, the precision of every timestamp the simulator writes, and
    never go back; `stamp()` is strictly increasing so two changes never share a version.
    """

    def __init__(self) -> None:
        self.offset = 0.0
        self.last = datetime.min.replace(tzinfo=UTC)

    def _wall(self) -> datetime:
        moment = datetime.now(UTC) + timedelta(seconds=self.offset)
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)

    def now(self) -> datetime:
        """The simulator's "now"."""
        self.last = max(self.last, self._wall())
        return self.last

    def stamp(self) -> datetime:
        """A "now" later than every earlier one, for a record's lastUpdated."""
        self.last = max(self._wall(), self.last + timedelta(milliseconds=1))
        return self.last

    def advance(self, seconds: float) -> None:
        """Move "now" forward."""
        self.offset += seconds


@dataclass
class SimConfig:
    """Every knob of the simulator; tests shrink the timings so they run fast."""

    seller_id: str = "A3TH9S8BH6GOGM"
    marketplace_id: str = "ATVPDKIKX0DER"
    client_id: str = "amzn1.application-oa2-client.syncdsim"
    client_secret: str = "sim-client-secret"
    refresh_token: str = "Atzr|sim-refresh-token"
    application_id: str = "amzn1.sellerapps.app.syncd-sim"
    aws_account: str = "123456789012"
    token_lifetime: float = 3600.0
    # Seconds between an ACCEPTED patch and its effect on reads (eventual consistency).
    consistency_delay: float = 2.0
    # searchOrders without a *Before searches up to now minus this, and echoes that bound.
    search_lag: float = 120.0
    fba_token_ttl: float = 30.0  # getInventorySummaries nextToken lifetime
    fba_page_size: int = 50
    orders_token_ttl: float = 24 * 3600.0  # searchOrders paginationToken lifetime
    plans: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_PLANS))
    # Notification delivery: EventBridge API destination and/or SQS.
    notify_url: str = ""
    notify_secret: str = ""
    notify_delay: float = 0.5
    order_change_to_webhook: bool = True
    delivery_timeout: float = 5.0
    retry_base: float = 1.0
    retry_cap: float = 60.0
    max_attempts: int = 10
    sqs_queue_url: str = ""
    sqs_endpoint_url: str = ""
    sqs_region: str = "us-east-1"
    aws_access_key_id: str = "testing"
    aws_secret_access_key: str = "testing"


@dataclass
class Listing:
    """A listings item: Amazon stores offer data as snake_case attributes and reads it back camelCase."""

    sku: str
    asin: str
    product_type: str
    title: str
    created: datetime
    updated: datetime
    attributes: dict[str, list[dict[str, Any]]]
    fba: bool = False

    def mfn_quantity(self) -> int | None:
        """The DEFAULT (merchant-fulfilled) quantity, or None for an FBA listing."""
        for entry in self.attributes.get("fulfillment_availability", []):
            if entry.get("fulfillment_channel_code") == "DEFAULT":
                return int(entry.get("quantity") or 0)
        return None

    def set_mfn_quantity(self, qty: int) -> None:
        """Set the DEFAULT quantity, keeping the entry's other fields."""
        entries = self.attributes.setdefault("fulfillment_availability", [])
        for entry in entries:
            if entry.get("fulfillment_channel_code") == "DEFAULT":
                entry["quantity"] = qty
                return
        entries.append({"fulfillment_channel_code": "DEFAULT", "quantity": qty})

    def price(self, market: str) -> tuple[Decimal, str] | None:
        """(our price, currency) of the all-buyers offer in a marketplace."""
        for offer in self.attributes.get("purchasable_offer", []):
            if offer.get("marketplace_id") != market or offer.get("audience", "ALL") != "ALL":
                continue
            for price in offer.get("our_price", []):
                for slot in price.get("schedule", []):
                    return Decimal(str(slot["value_with_tax"])), str(offer.get("currency", "USD"))
        return None

    def status(self, market: str) -> list[str]:
        """BUYABLE needs stock and a price; a listed offer is always DISCOVERABLE."""
        qty = self.mfn_quantity()
        buyable = self.price(market) is not None and (self.fba or (qty or 0) > 0)
        return ["BUYABLE", "DISCOVERABLE"] if buyable else ["DISCOVERABLE"]

    def to_api(self, included: set[str], markets: list[str], fba_qty: int) -> dict[str, Any]:
        """The `Item` body of getListingsItem / searchListingsItems for the requested datasets."""
        body: dict[str, Any] = {"sku": self.sku}
        if "summaries" in included:
            body["summaries"] = [
                {
                    "marketplaceId": m,
                    "asin": self.asin,
                    "productType": self.product_type,
                    "conditionType": "new_new",
                    "status": self.status(m),
                    "itemName": self.title,
                    "createdDate": iso(self.created),
                    "lastUpdatedDate": iso(self.updated),
                }
                for m in markets
            ]
        if "attributes" in included:
            body["attributes"] = {k: [dict(v) for v in vals] for k, vals in self.attributes.items()}
        if "offers" in included:
            body["offers"] = [
                {
                    "marketplaceId": m,
                    "offerType": "B2C",
                    "price": {"currencyCode": p[1], "amount": f"{p[0]:.2f}"},
                    "audience": {"value": "ALL", "displayName": "Sell on Amazon"},
                }
                for m in markets
                if (p := self.price(m)) is not None
            ]
        if "fulfillmentAvailability" in included:
            if self.fba:
                body["fulfillmentAvailability"] = [
                    {"fulfillmentChannelCode": "AMAZON_NA", "quantity": fba_qty}
                ]
            else:
                body["fulfillmentAvailability"] = [
                    {"fulfillmentChannelCode": "DEFAULT", "quantity": self.mfn_quantity() or 0}
                ]
        if "issues" in included:
            body["issues"] = []
        return body


@dataclass
class OrderLine:
    """One ordered seller SKU."""

    item_id: str
    sku: str
    asin: str
    title: str
    qty: int
    unit_price: Decimal
    currency: str
    shipped: int = 0


@dataclass
class SimOrder:
    """An order with its Orders 2026-01-01 fulfillment status."""

    order_id: str
    created: datetime
    updated: datetime
    status: str
    fulfilled_by: str  # MERCHANT | AMAZON
    marketplace_id: str
    lines: list[OrderLine]

    def to_api(self, included: set[str]) -> dict[str, Any]:
        """The `Order` body; `fulfillment` objects exist only with includedData=FULFILLMENT."""
        items = []
        for line in self.lines:
            item: dict[str, Any] = {
                "orderItemId": line.item_id,
                "quantityOrdered": line.qty,
                "product": {
                    "asin": line.asin,
                    "title": line.title,
                    "sellerSku": line.sku,
                    "condition": {"conditionType": "NEW"},
                    "price": {
                        "unitPrice": {"amount": f"{line.unit_price:.2f}", "currencyCode": line.currency}
                    },
                },
            }
            if "FULFILLMENT" in included:
                left = line.qty - line.shipped
                item["fulfillment"] = {"quantityFulfilled": line.shipped, "quantityUnfulfilled": left}
            items.append(item)
        body: dict[str, Any] = {
            "orderId": self.order_id,
            "createdTime": iso(self.created),
            "lastUpdatedTime": iso(self.updated),
            "programs": [],
            "salesChannel": {
                "channelName": "AMAZON",
                "marketplaceId": self.marketplace_id,
                "marketplaceName": MARKETPLACE_NAMES.get(self.marketplace_id, "Amazon"),
            },
            "orderItems": items,
        }
        if "FULFILLMENT" in included:
            body["fulfillment"] = {"fulfillmentStatus": self.status, "fulfilledBy": self.fulfilled_by}
        return body


MARKETPLACE_NAMES = {
    "ATVPDKIKX0DER": "Amazon.com",
    "A2EUQ1WTGCTBG2": "Amazon.ca",
    "A1AM78C64UM0Y8": "Amazon.com.mx",
    "A2Q3Y263D00KWC": "Amazon.com.br",
    "A1F83G8C2ARO7P": "Amazon.co.uk",
    "A1PA6795UKMFR9": "Amazon.de",
}


@dataclass
class FbaItem:
    """FBA inventory of one seller SKU in the simulated marketplace."""

    sku: str
    asin: str
    fnsku: str
    name: str
    fulfillable: int
    updated: datetime
    reserved: int = 0
    inbound: int = 0
    unfulfillable: int = 0

    def to_api(self, details: bool) -> dict[str, Any]:
        """One `InventorySummary`; `inventoryDetails` only with details=true."""
        body: dict[str, Any] = {
            "asin": self.asin,
            "fnSku": self.fnsku,
            "sellerSku": self.sku,
            "condition": "NewItem",
            "lastUpdatedTime": iso(self.updated),
            "productName": self.name,
            "totalQuantity": self.fulfillable + self.reserved + self.inbound + self.unfulfillable,
        }
        if details:
            body["inventoryDetails"] = {
                "fulfillableQuantity": self.fulfillable,
                "inboundWorkingQuantity": 0,
                "inboundShippedQuantity": self.inbound,
                "inboundReceivingQuantity": 0,
                "reservedQuantity": {
                    "totalReservedQuantity": self.reserved,
                    "pendingCustomerOrderQuantity": self.reserved,
                    "pendingTransshipmentQuantity": 0,
                    "fcProcessingQuantity": 0,
                },
                "researchingQuantity": {"totalResearchingQuantity": 0, "researchingQuantityBreakdown": []},
                "unfulfillableQuantity": {"totalUnfulfillableQuantity": self.unfulfillable},
            }
        return body
