"""SP-API notifications: built as Amazon shapes them, delivered the way EventBridge and SQS deliver.

EventBridge API destination: POST of the whole event (`detail` = notification) with the
connection's API-key header, 5 s timeout, retries with backoff on 401/407/409/429/5xx/timeouts,
none on other 4xx. SQS: one message per notification, body = the notification JSON. Both are
at-least-once and unordered; the fault knobs add loss, duplicates and reordering on purpose.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import structlog
from aiobotocore.session import get_session

from syncd.sandbox.amazon_gateway import Counters
from syncd.sandbox.amazon_state import V0_STATUS, Listing, SimConfig, SimOrder, iso
from syncd.sandbox.common import Deliveries

log = structlog.get_logger(__name__)

RETRY_STATUSES = {401, 407, 409, 429}
SQS_TYPES = {"ORDER_CHANGE"}
EVENTBRIDGE_TYPES = {"LISTINGS_ITEM_MFN_QUANTITY_CHANGE", "LISTINGS_ITEM_STATUS_CHANGE"}


def notification(config: SimConfig, kind: str, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The PascalCase envelope shared by ORDER_CHANGE and the listings types (payload 1.0)."""
    return {
        "NotificationVersion": "1.0",
        "NotificationType": kind,
        "PayloadVersion": "1.0",
        "EventTime": iso(now),
        "Payload": payload,
        "NotificationMetadata": {
            "ApplicationId": config.application_id,
            "SubscriptionId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{config.application_id}/{kind}")),
            "PublishTime": iso(now),
            "NotificationId": str(uuid.uuid4()),
        },
    }


def order_change(config: SimConfig, order: SimOrder, reason: str, now: datetime) -> dict[str, Any]:
    """ORDER_CHANGE for an order status change, with its v0-cased summary."""
    shipped = sum(line.shipped for line in order.lines)
    unshipped = sum(line.qty - line.shipped for line in order.lines)
    items = []
    for line in order.lines:
        item: dict[str, Any] = {
            "OrderItemId": line.item_id,
            "SellerSKU": line.sku,
            "SupplySourceId": None,
            "Quantity": line.qty,
            "QuantityShipped": line.shipped,
        }
        if shipped > 0 and unshipped > 0:
            # Item status appears only when the items of the order differ.
            item["OrderItemStatus"] = "Shipped" if line.shipped >= line.qty else "Unshipped"
        items.append(item)
    payload = {
        "OrderChangeNotification": {
            "NotificationLevel": "OrderLevel",
            "SellerId": config.seller_id,
            "AmazonOrderId": order.order_id,
            "OrderChangeType": "OrderStatusChange",
            "OrderChangeTrigger": {"TimeOfOrderChange": iso(order.updated), "ChangeReason": reason},
            "Summary": {
                "MarketplaceId": order.marketplace_id,
                "OrderStatus": V0_STATUS[order.status],
                "PurchaseDate": iso(order.created),
                "DestinationPostalCode": None,
                "FulfillmentType": "AFN" if order.fulfilled_by == "AMAZON" else "MFN",
                "OrderType": "StandardOrder",
                "NumberOfItemsShipped": shipped,
                "NumberOfItemsUnshipped": unshipped,
                "OrderPrograms": [],
                "ShippingPrograms": [],
                "OrderItems": items,
            },
        }
    }
    return notification(config, "ORDER_CHANGE", payload, now)


def mfn_quantity_change(config: SimConfig, sku: str, qty: int, now: datetime) -> dict[str, Any]:
    """LISTINGS_ITEM_MFN_QUANTITY_CHANGE."""
    payload = {"SellerId": config.seller_id, "FulfillmentChannelCode": "DEFAULT", "Sku": sku, "Quantity": qty}
    return notification(config, "LISTINGS_ITEM_MFN_QUANTITY_CHANGE", payload, now)


def listing_status_change(config: SimConfig, listing: Listing, now: datetime) -> dict[str, Any]:
    """LISTINGS_ITEM_STATUS_CHANGE (BUYABLE comes and goes with stock and price)."""
    payload = {
        "SellerId": config.seller_id,
        "MarketplaceId": config.marketplace_id,
        "Asin": listing.asin,
        "Sku": listing.sku,
        "CreatedDate": iso(listing.created),
        "Status": listing.status(config.marketplace_id),
    }
    return notification(config, "LISTINGS_ITEM_STATUS_CHANGE", payload, now)


def eventbridge_event(config: SimConfig, note: dict[str, Any]) -> dict[str, Any]:
    """The event an EventBridge rule hands its API destination."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": note["NotificationType"],
        "source": f"aws.partner/sellingpartnerapi.amazon.com/{config.aws_account}/{config.application_id}",
        "account": config.aws_account,
        "time": note["EventTime"][:19] + "Z",
        "region": config.sqs_region,
        "resources": [],
        "detail": note,
    }


@dataclass
class Faults:
    """Delivery faults: loss and duplicate probabilities, extra random delay (reordering), seed."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder_delay: float = 0.0
    seed: int = 0


class Notifier:
    """Publishes notifications to the configured EventBridge URL and SQS queue, with faults."""

    def __init__(self, config: SimConfig, counters: Counters) -> None:
        self.config = config
        self.counters = counters
        self.faults = Faults()
        self.rng = random.Random(0)
        self.published: deque[dict[str, Any]] = deque(maxlen=1000)
        self.deliveries = Deliveries()

    def set_faults(self, faults: Faults) -> None:
        """Replace the fault settings and reseed."""
        self.faults = faults
        self.rng = random.Random(faults.seed)

    def publish(self, note: dict[str, Any]) -> None:
        """Hand a notification to every transport that carries its type."""
        self.published.append(note)
        self.counters.notifications["published"] += 1
        kind = note["NotificationType"]
        if self.config.notify_url and (kind in EVENTBRIDGE_TYPES or self.config.order_change_to_webhook):
            self._fan_out(eventbridge_event(self.config, note), self._post)
        if self.config.sqs_queue_url and kind in SQS_TYPES:
            self._fan_out(note, self._send_sqs)

    def _fan_out(self, body: dict[str, Any], deliver: Any) -> None:
        if self.rng.random() < self.faults.loss:
            self.counters.notifications["dropped"] += 1
            return
        copies = 2 if self.rng.random() < self.faults.duplicate else 1
        if copies == 2:
            self.counters.notifications["duplicated"] += 1
        for _ in range(copies):
            delay = self.config.notify_delay + self.rng.uniform(0, self.faults.reorder_delay)
            self.deliveries.spawn(self._later(delay, deliver, body))

    async def _later(self, delay: float, deliver: Any, body: dict[str, Any]) -> None:
        await asyncio.sleep(delay)
        try:
            await deliver(body)
        except Exception as err:  # a delivery task must never die silently
            self.counters.notifications["failed"] += 1
            log.warning("sim.amazon.delivery_failed", error=f"{type(err).__name__}: {err}")

    async def _post(self, event: dict[str, Any]) -> None:
        headers = {"Content-Type": "application/json", "x-syncd-webhook-secret": self.config.notify_secret}
        timeout = aiohttp.ClientTimeout(total=self.config.delivery_timeout)
        data = json.dumps(event).encode()
        for attempt in range(self.config.max_attempts):
            if attempt:
                self.counters.notifications["retried"] += 1
                await asyncio.sleep(min(self.config.retry_cap, self.config.retry_base * 2 ** (attempt - 1)))
            try:
                async with self.deliveries.session.post(
                    self.config.notify_url, data=data, headers=headers, timeout=timeout
                ) as resp:
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError):
                continue
            if 200 <= status < 300:
                self.counters.notifications["delivered"] += 1
                return
            if status not in RETRY_STATUSES and status < 500:
                self.counters.notifications["rejected"] += 1
                return
        self.counters.notifications["failed"] += 1

    async def _send_sqs(self, note: dict[str, Any]) -> None:
        options: dict[str, Any] = {
            "region_name": self.config.sqs_region,
            "aws_access_key_id": self.config.aws_access_key_id,
            "aws_secret_access_key": self.config.aws_secret_access_key,
        }
        if self.config.sqs_endpoint_url:
            options["endpoint_url"] = self.config.sqs_endpoint_url
        async with get_session().create_client("sqs", **options) as client:
            await client.send_message(QueueUrl=self.config.sqs_queue_url, MessageBody=json.dumps(note))
        self.counters.notifications["sqs_sent"] += 1

    async def drain(self) -> None:
        """Wait until every scheduled delivery has finished (wrap in asyncio.timeout to bound it)."""
        await self.deliveries.drain()

    async def close(self) -> None:
        """Cancel pending deliveries and close the HTTP session."""
        await self.deliveries.close()
