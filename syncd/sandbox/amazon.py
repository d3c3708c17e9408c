"""Amazon SP-API simulator: LWA, Orders 2026-01-01, Listings Items 2021-08-01, FBA Inventory v1,
notifications to an EventBridge API destination (HTTP) and SQS, and a /_sim/ control plane.

Standalone:

    python -m syncd.sandbox.amazon --port 8801 \\
        --notify-url http://127.0.0.1:8780/webhooks/amazon --notify-secret s3cret --seed-demo

then point syncd's `[channels.amazon]` at it: `api_base = "http://127.0.0.1:8801"`,
`token_url = "http://127.0.0.1:8801/auth/o2/token"` and the LWA credentials printed at start.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from aiohttp import web

from syncd.sandbox import amazon_api, amazon_control, amazon_listings, amazon_orders
from syncd.sandbox.amazon_api import gateway_middleware, outage_middleware, request_id_middleware
from syncd.sandbox.amazon_market import AmazonMarket
from syncd.sandbox.amazon_state import SimConfig
from syncd.sandbox.amazon_wire import MARKET
from syncd.sandbox.common import SimServer

__all__ = ["AmazonMarket", "AmazonSimulator", "SimConfig", "create_app", "main"]

DEMO_LISTINGS = [
    {
        "sku": "MUG-BLUE",
        "quantity": 12,
        "price": "14.90",
        "title": "Blue enamel mug",
        "product_type": "DRINKING_CUP",
    },
    {
        "sku": "MUG-RED",
        "quantity": 8,
        "price": "14.90",
        "title": "Red enamel mug",
        "product_type": "DRINKING_CUP",
    },
    {
        "sku": "TEAPOT-1L",
        "quantity": 3,
        "price": "39.00",
        "title": "Cast iron teapot",
        "product_type": "TEAPOT",
    },
    {
        "sku": "KETTLE-FBA",
        "fba": True,
        "price": "59.00",
        "title": "Gooseneck kettle",
        "product_type": "KETTLE",
    },
]


def create_app(market: AmazonMarket | None = None) -> web.Application:
    """The simulator as an aiohttp application (state in `app[MARKET]`)."""
    market = market or AmazonMarket()
    app = web.Application(middlewares=[request_id_middleware, outage_middleware, gateway_middleware])
    app[MARKET] = market
    amazon_api.add_routes(app)
    amazon_orders.add_routes(app)
    amazon_listings.add_routes(app)
    amazon_control.add_routes(app)

    async def close_market(_: web.Application) -> None:
        await market.close()

    app.on_cleanup.append(close_market)
    return app


class AmazonSimulator:
    """The simulator served on loopback: its market (state), app and server."""

    def __init__(
        self, config: SimConfig | None = None, seed: int = 0, host: str = "127.0.0.1", port: int = 0
    ):
        self.market = AmazonMarket(config, seed)
        self.app = create_app(self.market)
        self.server = SimServer(self.app, host, port)
        self.market.server = self.server

    @property
    def url(self) -> str:
        """Base URL (SP-API and LWA share it here)."""
        return self.server.url

    async def start(self) -> AmazonSimulator:
        """Start listening."""
        await self.server.start()
        return self

    async def stop(self) -> None:
        """Stop listening and cancel pending work."""
        await self.server.stop()

    async def __aenter__(self) -> AmazonSimulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def client_settings(self, **overrides: Any) -> dict[str, Any]:
        """Keys of syncd's `AmazonSettings` that point the adapter at this simulator."""
        config = self.market.config
        keys: dict[str, Any] = {
            "enabled": True,
            "api_base": self.url,
            "token_url": f"{self.url}{amazon_api.LWA_PATH}",
            "seller_id": config.seller_id,
            "marketplace_ids": [config.marketplace_id],
            "client_id": config.client_id,
            "client_secret": config.client_secret,
            "refresh_token": config.refresh_token,
            "webhook_secret": config.notify_secret,
        }
        keys.update(overrides)
        return keys


async def _serve(args: argparse.Namespace) -> None:
    config = SimConfig(
        notify_url=args.notify_url,
        notify_secret=args.notify_secret,
        notify_delay=args.notify_delay,
        consistency_delay=args.consistency_delay,
        token_lifetime=args.token_lifetime,
        search_lag=args.search_lag,
        sqs_queue_url=args.sqs_queue_url,
        sqs_endpoint_url=args.sqs_endpoint_url,
    )
    sim = AmazonSimulator(config, seed=args.seed, host=args.host, port=args.port)
    if args.seed_demo:
        for spec in DEMO_LISTINGS:
            sim.market.seed_listing(spec)
        sim.market.seed_fba({"sku": "KETTLE-FBA", "fulfillable": 40, "inbound": 10})
    await sim.start()
    print(f"amazon simulator on {sim.url}  seller_id={config.seller_id}  client_id={config.client_id}")
    print(f"  client_secret={config.client_secret}  refresh_token={config.refresh_token}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: list[str] | None = None) -> None:
    """Run the Amazon simulator until interrupted.

    Example: python -m syncd.sandbox.amazon --port 8801 --notify-url http://127.0.0.1:8780/webhooks/amazon
    """
    parser = argparse.ArgumentParser(prog="python -m syncd.sandbox.amazon", description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8801)
    parser.add_argument("--seed", type=int, default=0, help="seed for ids and delivery faults")
    parser.add_argument("--notify-url", default="", help="EventBridge API destination URL (syncd's webhook)")
    parser.add_argument("--notify-secret", default="", help="value of the x-syncd-webhook-secret header")
    parser.add_argument("--notify-delay", type=float, default=0.5, help="seconds before a delivery")
    parser.add_argument("--consistency-delay", type=float, default=2.0, help="seconds until a patch shows")
    parser.add_argument("--token-lifetime", type=float, default=3600.0, help="LWA access token seconds")
    parser.add_argument("--search-lag", type=float, default=120.0, help="searchOrders default bound lag")
    parser.add_argument("--sqs-queue-url", default="", help="publish ORDER_CHANGE to this SQS queue")
    parser.add_argument("--sqs-endpoint-url", default="", help="SQS endpoint (e.g. a moto server)")
    parser.add_argument("--seed-demo", action="store_true", help="start with a few demo listings")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
