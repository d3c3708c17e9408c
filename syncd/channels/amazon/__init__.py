"""Amazon Selling Partner API adapter: LWA auth, Orders 2026-01-01, Listings Items, FBA Inventory."""

from syncd.channels.amazon.adapter import POLL_RESOURCES, AmazonChannel, create_channel
from syncd.channels.amazon.sqs import SqsNotificationConsumer

__all__ = ["POLL_RESOURCES", "AmazonChannel", "SqsNotificationConsumer", "create_channel"]
