"""ShipBob-style 3PL adapter: inventory counts, receipts and shipments in; nothing pushed out."""

from syncd.channels.threepl.adapter import ThreePLChannel, create_channel
from syncd.channels.threepl.webhook import ThreePLWebhookReceiver

__all__ = ["ThreePLChannel", "ThreePLWebhookReceiver", "create_channel"]
