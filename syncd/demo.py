"""`syncd demo`: the daemon against the three sandbox simulators, with a seeded shop and traffic.

No config, no network: a temporary state directory, everything on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import structlog
from pydantic import SecretStr

from syncd.config import AmazonSettings, LocationSettings, MercadoLibreSettings, Settings, ThreePLSettings
from syncd.daemon import Daemon, import_catalog_offline
from syncd.log import configure
from syncd.sandbox.amazon import AmazonSimulator
from syncd.sandbox.amazon import SimConfig as AmazonConfig
from syncd.sandbox.catalog import DemoCatalog, demo_catalog
from syncd.sandbox.common import SimServer
from syncd.sandbox.mercadolibre import MercadoLibreSim, create_app
from syncd.sandbox.mercadolibre_core import SimConfig as MLConfig
from syncd.sandbox.threepl import start as start_threepl
from syncd.sandbox.threepl_state import ThreePLState
from syncd.sandbox.traffic import Schedule, Traffic

log = structlog.get_logger("syncd.demo")

ML_HOOK_SECRET = "demo-ml-callback-secret"
AMAZON_HOOK_SECRET = "demo-eventbridge-secret"
THREEPL_TOKEN = "demo-3pl-pat"
THREEPL_WHSEC = "whsec_ZGVtby13ZWJob29rLXNpZ25pbmctc2VjcmV0"
FULL_STORY_SECONDS = 150.0


class Sandbox:
    """The three simulators, seeded with the demo shop."""

    def __init__(self, catalog: DemoCatalog) -> None:
        self.catalog = catalog
        self.amazon = AmazonSimulator(AmazonConfig(consistency_delay=1.0, search_lag=0, notify_delay=0.2,
                                                   notify_secret=AMAZON_HOOK_SECRET), seed=7)
        self.ml = MercadoLibreSim(MLConfig(seed=7, topics=("orders_v2", "items"), retry_delays=(1.0, 3.0, 10.0)))
        self.ml_server = SimServer(create_app(self.ml))
        self.tpl = ThreePLState(THREEPL_TOKEN, seed=7, retry_scale=0.01)
        self.tpl_server: SimServer | None = None

    async def start(self) -> None:
        """Listen on loopback and seed listings, items and inventory."""
        await self.amazon.start()
        await self.ml_server.start()
        self.ml.server = self.ml_server
        self.tpl_server = await start_threepl(self.tpl)
        c = self.catalog
        self.tpl.seed([{"sku": p.sku, "name": p.title, "on_hand": p.on_hand} for p in c.products])
        groups: dict[str, list[str]] = {}
        for p in c.products:
            if p.amazon:
                self.amazon.market.seed_listing({"sku": p.sku, "quantity": 0, "price": p.price, "title": p.title})
            if p.fba:
                self.amazon.market.seed_listing({"sku": f"{p.sku}-FBA", "quantity": 0, "price": p.price,
                                                 "title": p.title, "fba": True})
                self.amazon.market.seed_fba({"sku": f"{p.sku}-FBA", "fulfillable": p.fba})
            if p.mercadolibre and p.ml_group:
                groups.setdefault(p.ml_group, []).append(p.sku)
            elif p.mercadolibre:
                item = self.ml.market.seed_item({"title": p.title, "price": p.price, "available_quantity": 0})
                c.ml_items[p.sku] = (item.id, "")
        for skus in groups.values():
            first = next(p for p in c.products if p.sku == skus[0])
            item = self.ml.market.seed_item({"title": first.title.rsplit(" - ", 1)[0], "price": first.price,
                                             "variations": [{"available_quantity": 0, "seller_sku": s} for s in skus]})
            for sku, variation in zip(skus, item.variations, strict=True):
                c.ml_items[sku] = (item.id, str(variation.id))
        kit = self.ml.market.seed_item({"title": c.kit.title, "price": c.kit.price, "available_quantity": 0})
        c.ml_items[c.kit_sku] = (kit.id, "")
        self.amazon.market.seed_listing({"sku": c.kit_sku, "quantity": 0, "price": c.kit.price, "title": c.kit.title})

    def settings(self, state_dir: Path, port: int) -> Settings:
        """Daemon settings pointing every channel at its simulator."""
        s = Settings()
        s.daemon.database = state_dir / "syncd.db"
        s.daemon.admin_listen = f"127.0.0.1:{port}"
        s.daemon.public_listen = "127.0.0.1:0"
        s.daemon.log_format = "console"
        s.outbox.backoff_base_seconds = 0.5
        s.outbox.backoff_cap_seconds = 8.0
        s.outbox.max_attempts = 1000  # an outage of minutes must queue, not dead-letter
        s.locations = {
            "main": LocationSettings(name="3PL warehouse", kind="warehouse", sources=["threepl", "manual"]),
            "fba": LocationSettings(name="Amazon FBA", kind="fba", sources=["amazon", "manual"]),
        }
        fast = {"orders_poll_seconds": 10.0, "stock_poll_seconds": 20.0, "listings_poll_seconds": 60.0,
                "lag_threshold_seconds": 30.0, "down_after_failures": 4}
        s.channels.amazon = AmazonSettings(**self.amazon.client_settings(
            fba_location="fba", rate_limits={"searchOrders": 0.2}, **fast))
        self.amazon.market.config.plans["searchOrders"] = (0.2, 5)
        ml = self.ml.config
        s.channels.mercadolibre = MercadoLibreSettings(
            enabled=True, api_base=self.ml_server.url, token_url=f"{self.ml_server.url}/oauth/token",
            user_id=ml.user_id, application_id=ml.application_id, client_id=ml.client_id,
            client_secret=SecretStr(ml.client_secret),
            refresh_token=SecretStr(self.ml.oauth.current_refresh_token or ""),
            webhook_secret=SecretStr(ML_HOOK_SECRET), site_id=ml.site_id, **fast)
        assert self.tpl_server is not None
        s.channels.threepl = ThreePLSettings(
            enabled=True, api_base=self.tpl_server.url, api_token=SecretStr(THREEPL_TOKEN),
            webhook_secret=SecretStr(THREEPL_WHSEC), **{**fast, "lag_threshold_seconds": 60.0})
        return s

    def point_notifications_at(self, public_url: str) -> None:
        """Deliver every simulator's notifications to the daemon's public listener."""
        self.amazon.market.config.notify_url = f"{public_url}/webhooks/amazon"
        self.ml.config.notify_url = f"{public_url}/webhooks/mercadolibre/{ML_HOOK_SECRET}"
        self.tpl.webhooks.subscribe(f"{public_url}/webhooks/threepl", ["order.shipped"], secret=THREEPL_WHSEC)

    async def stop(self) -> None:
        """Stop all three."""
        await self.amazon.stop()
        await self.ml.notifier.close()
        await self.ml_server.stop()
        if self.tpl_server is not None:
            await self.tpl_server.stop()


async def _demo(duration: float | None, port: int) -> None:
    catalog = demo_catalog()
    sandbox = Sandbox(catalog)
    await sandbox.start()
    try:
        await _run(sandbox, catalog, duration, port)
    finally:
        await sandbox.stop()


async def _run(sandbox: Sandbox, catalog: DemoCatalog, duration: float | None, port: int) -> None:
    with tempfile.TemporaryDirectory(prefix="syncd-demo-") as tmp:
        settings = sandbox.settings(Path(tmp), port)
        # The seller's first step: import the catalog (before channels start, as `syncd catalog import`).
        await import_catalog_offline(settings, catalog.csv())
        daemon = Daemon(settings)
        await daemon.start()
        sandbox.point_notifications_at(daemon.public_url)
        service = daemon.service
        assert service is not None

        async def set_price(sku: str, price: Decimal) -> object:
            return await service.set_price(sku, price)

        schedule = Schedule()
        if duration is not None and duration < FULL_STORY_SECONDS:
            schedule = schedule.scaled(duration / FULL_STORY_SECONDS)
        traffic = Traffic(sandbox.amazon, sandbox.ml, sandbox.tpl, catalog, set_price, schedule)
        print(f"\n  syncd demo: the board is at {daemon.admin_url}/   (status: {daemon.admin_url}/status)\n"
              f"  {len(catalog.products) + 1} products on Amazon, MercadoLibre and a 3PL (all simulated on loopback).\n"
              f"  A MercadoLibre outage starts {schedule.outage:.0f} s in and lasts {schedule.outage_length:.0f} s."
              f"  Ctrl-C stops.\n", flush=True)
        log.info("demo started", board=f"{daemon.admin_url}/", started=datetime.now(UTC).isoformat())
        task = asyncio.create_task(traffic.run())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if not task.cancelled() and task.exception() is not None:
                log.error("demo traffic failed", error=str(task.exception()))
            await daemon.stop()
        log.info("demo stopped", sales=traffic.sales)


def run_demo(duration: float | None = None, port: int = 8781) -> int:
    """Run the demo until Ctrl-C or `duration` seconds; return the exit code."""
    configure("console", "info")
    asyncio.run(_demo(duration, port))
    return 0
