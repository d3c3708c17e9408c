"""End to end over loopback: the real daemon against the Amazon, MercadoLibre and 3PL simulators,
on a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from syncd.config import AmazonSettings, MercadoLibreSettings, Settings, ThreePLSettings
from syncd.daemon import Daemon, import_catalog_offline
from syncd.sandbox.amazon import AmazonSimulator
from syncd.sandbox.amazon import SimConfig as AmazonSimConfig
from syncd.sandbox.amazon_state import DEFAULT_PLANS
from syncd.sandbox.common import OutageMode, SimServer
from syncd.sandbox.mercadolibre import MercadoLibreSim, create_app
from syncd.sandbox.mercadolibre_core import OPERATIONS, SimConfig
from syncd.sandbox.mercadolibre_notify import DeliveryFaults
from syncd.sandbox.threepl import start as start_3pl
from syncd.sandbox.threepl_state import ThreePLState
from tests.conftest import make_settings

ML_SECRET = "ml-hook-secret-123"
PAT = "pat-e2e-token"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass
class World:
    daemon: Daemon
    ml: MercadoLibreSim
    ml_server: SimServer
    tpl: ThreePLState
    amazon_sim: AmazonSimulator
    items: dict[str, str]  # sku -> ML item id
    variations: dict[str, int]
    http: aiohttp.ClientSession
    db: Path

    async def until(self, predicate: Callable[[], Any], within: float = 10.0, what: str = "") -> None:
        async with asyncio.timeout(within):
            while True:
                value = predicate()
                if asyncio.iscoroutine(value):
                    value = await value
                if value:
                    return
                await asyncio.sleep(0.05)

    async def synced(self) -> None:
        """Wait until the 3PL's counts reached both marketplaces and ML re-activated the item."""
        await self.until(lambda: self.ml_qty("MUG") == 10 and self.amazon_qty("MUG-A") == 10
                         and self.ml.market.get_item(self.items["MUG"]).status == "active")

    def amazon_qty(self, seller_sku: str) -> int | None:
        return self.amazon_sim.market.listings[seller_sku].mfn_quantity()

    def amazon_sale(self, seller_sku: str, qty: int) -> str:
        return self.amazon_sim.market.make_sale({"items": [{"sku": seller_sku, "qty": qty}]}).order_id

    def ml_qty(self, sku: str) -> int:
        item = self.ml.market.get_item(self.items[sku])
        if sku in self.variations:
            return next(v.available_quantity for v in item.variations if v.id == self.variations[sku])
        return item.available_quantity

    async def product(self, sku: str) -> dict[str, Any]:
        async with self.http.get(f"{self.daemon.admin_url}/api/products/{sku}") as resp:
            return dict(await resp.json())

    async def status(self) -> tuple[int, dict[str, Any]]:
        async with self.http.get(f"{self.daemon.admin_url}/status") as resp:
            return resp.status, dict(await resp.json())

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.db)
        try:
            return conn.execute(query, params).fetchall()
        finally:
            conn.close()


def _settings(tmp: Path, amazon: AmazonSimulator, ml: MercadoLibreSim, ml_url: str, tpl_url: str) -> Settings:
    s = make_settings(tmp, max_attempts=10_000, cap=0.2)
    s.channels.mercadolibre = MercadoLibreSettings(
        enabled=True, api_base=ml_url, token_url=f"{ml_url}/oauth/token", user_id=ml.config.user_id,
        application_id=ml.config.application_id, client_id=ml.config.client_id,
        client_secret=SecretStr(ml.config.client_secret),
        refresh_token=SecretStr(ml.oauth.current_refresh_token or ""), webhook_secret=SecretStr(ML_SECRET),
        site_id=ml.config.site_id, rate_limits=dict.fromkeys(OPERATIONS, 1000.0),
        orders_poll_seconds=0.5, listings_poll_seconds=3600, lag_threshold_seconds=2.0, down_after_failures=3)
    s.channels.threepl = ThreePLSettings(
        enabled=True, api_base=tpl_url, api_token=SecretStr(PAT), webhook_secret=SecretStr(WHSEC),
        stock_poll_seconds=3600, orders_poll_seconds=3600, lag_threshold_seconds=3600)
    s.channels.amazon = AmazonSettings(**amazon.client_settings(
        rate_limits={"searchOrders": 20.0}, orders_poll_seconds=0.5, listings_poll_seconds=3600,
        lag_threshold_seconds=5.0))
    return s


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    ml = MercadoLibreSim(SimConfig(seed=3, topics=("orders_v2", "items"), retry_delays=(0.05, 0.1, 0.2),
                                   rate_limits=dict.fromkeys(OPERATIONS, (1000.0, 1000.0))))
    ml_server = SimServer(create_app(ml))
    await ml_server.start()
    ml.server = ml_server  # lets the outage switch close the socket
    mug = ml.market.seed_item({"title": "Mug", "price": 100, "available_quantity": 0})
    tee = ml.market.seed_item({"title": "Tee", "price": 200, "variations": [
        {"available_quantity": 0, "seller_sku": "TEE-S"}, {"available_quantity": 0, "seller_sku": "TEE-M"}]})
    kit = ml.market.seed_item({"title": "Set", "price": 150, "available_quantity": 0})
    items = {"MUG": mug.id, "TEE-S": tee.id, "TEE-M": tee.id, "SET": kit.id}
    variations = {"TEE-S": tee.variations[0].id, "TEE-M": tee.variations[1].id}
    tpl = ThreePLState(PAT, seed=7, retry_scale=0.001)
    tpl.seed([{"sku": "MUG", "on_hand": 10}, {"sku": "TEE-S", "on_hand": 5}, {"sku": "TEE-M", "on_hand": 6}])
    tpl_server = await start_3pl(tpl)
    amazon_sim = AmazonSimulator(AmazonSimConfig(
        consistency_delay=0.05, search_lag=0, notify_delay=0.01, notify_secret="amzn-hook-secret", retry_base=0.05,
        plans={**DEFAULT_PLANS, "searchOrders": (20.0, 20)}), seed=11)
    await amazon_sim.start()
    for seller_sku, price in (("MUG-A", 12), ("TEE-M", 20)):
        amazon_sim.market.seed_listing({"sku": seller_sku, "quantity": 0, "price": price})
    settings = _settings(tmp_path, amazon_sim, ml, ml_server.url, tpl_server.url)
    catalog = ("sku,title,location,channel,external_id,variation_id,safety_buffer,cap,share\n"
               f"MUG,Mug,main,mercadolibre,{mug.id},,0,,\nMUG,Mug,main,amazon,MUG-A,,0,,\n"
               "MUG,Mug,main,threepl,MUG,,0,,\n"
               f"TEE-S,Tee S,main,mercadolibre,{tee.id},{variations['TEE-S']},0,,\n"
               f"TEE-M,Tee M,main,mercadolibre,{tee.id},{variations['TEE-M']},0,,\n"
               "TEE-M,Tee M,main,amazon,TEE-M,,0,,\n"
               f"SET,Mug pair,main,mercadolibre,{kit.id},,0,,\n"
               "kit_sku,component_sku,qty\nSET,MUG,2\n")
    # The catalog goes in before channels start, as a seller's `syncd catalog import` would.
    await import_catalog_offline(settings, catalog)
    daemon = Daemon(settings)
    await daemon.start()
    amazon_sim.market.config.notify_url = f"{daemon.public_url}/webhooks/amazon"
    ml.config.notify_url = f"{daemon.public_url}/webhooks/mercadolibre/{ML_SECRET}"
    tpl.webhooks.subscribe(f"{daemon.public_url}/webhooks/threepl", ["order.shipped"], secret=WHSEC)
    async with aiohttp.ClientSession() as http:
        yield World(daemon, ml, ml_server, tpl, amazon_sim, items, variations, http, settings.daemon.database)
        await daemon.stop()
    await amazon_sim.stop()
    await ml.notifier.close()
    await ml_server.stop()
    await tpl_server.stop()


async def test_threepl_count_rebases_on_hand_and_moves_both_marketplaces(world: World) -> None:
    await world.until(lambda: world.ml_qty("MUG") == 10 and world.amazon_qty("MUG-A") == 10)
    await world.until(lambda: world.ml_qty("TEE-S") == 5 and world.ml_qty("TEE-M") == 6)
    await world.until(lambda: world.ml_qty("SET") == 5)  # kit follows its component
    product = await world.product("MUG")
    assert product["explain"]["pools"][0]["count"]["source"] == "threepl"


async def test_mercadolibre_sale_lowers_amazon_and_leaves_the_3pl_alone(world: World) -> None:
    await world.synced()
    world.ml.market.sale(world.items["MUG"], None, 2)
    await world.until(lambda: world.amazon_qty("MUG-A") == 8, what="amazon lowered")
    await world.until(lambda: world.ml_qty("SET") == 4)
    assert world.tpl.item_by_sku("MUG").on_hand == 10  # nothing is pushed to the 3PL
    assert world.sql("SELECT COUNT(*) FROM outbox WHERE channel = 'threepl'") == [(0,)]
    product = await world.product("MUG")
    assert (product["on_hand"], product["committed"], product["available"]) == (10, 2, 8)


async def test_amazon_sale_lowers_the_mercadolibre_listing(world: World) -> None:
    await world.until(lambda: world.ml_qty("TEE-M") == 6)
    await world.until(lambda: world.amazon_qty("TEE-M") == 6)
    world.amazon_sale("TEE-M", 4)
    await world.until(lambda: world.ml_qty("TEE-M") == 2)
    assert world.tpl.item_by_sku("TEE-M").on_hand == 6  # the 3PL is untouched


async def test_duplicate_and_out_of_order_order_updates_apply_once(world: World) -> None:
    await world.synced()
    world.ml.notifier.set_faults(DeliveryFaults(duplicate_probability=1.0, reorder_delay_seconds=0.2, seed=5))
    order = world.ml.market.sale(world.items["MUG"], None, 1, status="payment_required")
    world.ml.clock.advance(1)
    world.ml.market.order_action(order.id, "pay")
    await world.until(lambda: world.amazon_qty("MUG-A") == 9)
    await asyncio.sleep(0.5)  # let every duplicate and late delivery land
    product = await world.product("MUG")
    assert (product["committed"], product["reserved"], product["available"]) == (1, 0, 9)
    rows = world.sql("SELECT state FROM orders WHERE channel = 'mercadolibre' AND order_id = ?", str(order.id))
    assert rows == [("paid",)]


async def test_lost_notification_is_recovered_by_polling(world: World) -> None:
    await world.synced()
    world.ml.notifier.set_faults(DeliveryFaults(loss_probability=1.0, seed=1))
    world.ml.market.sale(world.items["MUG"], None, 3)
    await world.until(lambda: world.amazon_qty("MUG-A") == 7, within=15)


async def test_threepl_shipment_moves_on_hand_once_and_releases_the_order(world: World) -> None:
    await world.synced()
    order = world.ml.market.sale(world.items["MUG"], None, 2)
    await world.until(lambda: world.amazon_qty("MUG-A") == 8)
    world.tpl.webhooks.set_faults(loss=0.0, duplicate=1.0, reorder_max_delay=0.0, seed=2)
    world.tpl.create_order(f"mercadolibre:{order.id}", [("MUG", 2)])
    world.tpl.ship(f"mercadolibre:{order.id}")

    async def shipped() -> bool:
        p = await world.product("MUG")
        return bool(p["on_hand"] == 8 and p["committed"] == 0)

    await world.until(shipped)
    await asyncio.sleep(0.3)  # the duplicate delivery arrives and changes nothing
    product = await world.product("MUG")
    assert (product["on_hand"], product["available"]) == (8, 8)
    assert world.amazon_qty("MUG-A") == 8


async def test_webhooks_with_bad_secret_or_signature_get_401_and_change_nothing(world: World) -> None:
    before = world.sql("SELECT COUNT(*) FROM inbox")
    body = b'{"resource":"/orders/1","user_id":1,"topic":"orders_v2","application_id":1,"attempts":1}'
    async with world.http.post(f"{world.daemon.public_url}/webhooks/mercadolibre/wrong", data=body) as resp:
        assert resp.status == 401
    headers = {"webhook-id": "msg_x", "webhook-timestamp": str(int(datetime.now(UTC).timestamp())),
               "webhook-signature": "v1,bm90IGEgcmVhbCBzaWduYXR1cmU="}
    async with world.http.post(f"{world.daemon.public_url}/webhooks/threepl", data=b"{}", headers=headers) as resp:
        assert resp.status == 401
    async with world.http.post(f"{world.daemon.public_url}/webhooks/mercadolibre/{ML_SECRET}",
                               data=b"{not json") as resp:
        assert resp.status == 400
    assert world.sql("SELECT COUNT(*) FROM inbox") == before


async def test_mercadolibre_outage_queues_pushes_then_drains_and_status_recovers(world: World) -> None:
    await world.synced()
    await world.ml.set_mode(OutageMode.REFUSE)
    order_id = world.amazon_sale("MUG-A", 3)
    await world.until(lambda: world.sql("SELECT 1 FROM orders WHERE order_id = ?", order_id))

    async def not_ok() -> bool:
        status, doc = await world.status()
        ch = doc["channels"]["mercadolibre"]
        return status == 503 and ch["state"] in ("lagging", "down") and ch["queue_depth"] >= 1

    await world.until(not_ok, within=15)
    assert world.ml_qty("MUG") == 10
    await world.ml.set_mode(OutageMode.UP)

    async def recovered() -> bool:
        status, doc = await world.status()
        return status == 200 and doc["channels"]["mercadolibre"]["queue_depth"] == 0

    await world.until(recovered, within=20)
    assert world.ml_qty("MUG") == 7 and world.ml_qty("SET") == 3


async def test_access_token_expiry_mid_run_is_refreshed_and_the_rotated_token_is_stored(world: World) -> None:
    await world.synced()
    first = world.sql("SELECT refresh_token FROM tokens WHERE channel = 'mercadolibre'")
    world.ml.oauth.expire_access_tokens()
    world.amazon_sim.market.config.token_lifetime = 0.5  # Amazon's access token expires mid-run too
    world.amazon_sale("MUG-A", 1)
    await world.until(lambda: world.ml_qty("MUG") == 9)
    await asyncio.sleep(0.6)
    world.amazon_sale("MUG-A", 1)
    await world.until(lambda: world.ml_qty("MUG") == 8)
    stored = world.sql("SELECT refresh_token FROM tokens WHERE channel = 'mercadolibre'")
    assert stored and stored != first
    assert stored[0][0] == world.ml.oauth.current_refresh_token  # what ML will accept next



async def test_orders_backstop_polls_less_while_webhooks_flow(world: World) -> None:
    await world.synced()
    poller = world.daemon.pollers[("mercadolibre", "orders")]
    assert poller.pace is not None and poller.pace.pushed
    quiet = poller.pace.interval(datetime.now(UTC), None)
    world.ml.market.sale(world.items["MUG"], None, 1)
    await world.until(lambda: world.daemon.deliveries.get("mercadolibre") is not None)
    assert poller.pace.interval(datetime.now(UTC), world.daemon.deliveries["mercadolibre"]) == 4 * quiet


async def test_secrets_never_reach_the_logs(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    await world.synced()
    world.ml.market.sale(world.items["MUG"], None, 1)
    world.ml.oauth.expire_access_tokens()  # forces a refresh: new tokens flow through the adapter
    async with world.http.post(f"{world.daemon.public_url}/webhooks/mercadolibre/not-the-secret", data=b"{}") as r:
        assert r.status == 401
    async with world.http.post(f"{world.daemon.public_url}/webhooks/amazon", data=b"{}",
                               headers={"x-syncd-webhook-secret": "wrong"}) as r:
        assert r.status == 401
    await world.until(lambda: world.amazon_qty("MUG-A") == 9)
    out = capsys.readouterr()
    logs = out.out + out.err
    assert "amazon.patch.accepted" in logs  # the logs were captured
    settings = world.daemon.settings.channels
    secrets = [ML_SECRET, PAT, WHSEC, settings.mercadolibre.client_secret.get_secret_value(),
               settings.amazon.client_secret.get_secret_value(), settings.amazon.refresh_token.get_secret_value(),
               world.ml.oauth.current_refresh_token or "", world.daemon.settings.channels.amazon.webhook_secret
               .get_secret_value()]
    stored = world.sql("SELECT refresh_token, access_token FROM tokens")
    secrets += [t for row in stored for t in row if t]
    for secret in secrets:
        assert secret and secret not in logs, "a secret leaked into the logs"


async def test_notifications_that_cannot_be_fetched_during_an_outage_wait_and_are_not_lost(world: World) -> None:
    await world.synced()
    await world.ml.set_mode(OutageMode.ERROR)  # the API answers 503; notifications still arrive
    order = world.ml.market.sale(world.items["MUG"], None, 2)
    await world.until(lambda: world.sql(
        "SELECT attempts FROM inbox WHERE state = 'pending_fetch' AND payload LIKE ?", f"%{order.id}%")
        and world.sql("SELECT MAX(attempts) FROM inbox WHERE payload LIKE ?", f"%{order.id}%")[0][0] >= 2)
    assert world.sql("SELECT COUNT(*) FROM inbox WHERE state = 'failed'") == [(0,)]
    await world.ml.set_mode(OutageMode.UP)
    await world.until(lambda: world.amazon_qty("MUG-A") == 8, within=20)


async def test_public_listener_serves_only_webhooks_and_refuses_oversized_bodies(world: World) -> None:
    before = world.sql("SELECT COUNT(*) FROM inbox")
    big = b"{" + b" " * (300 * 1024) + b"}"
    async with world.http.post(f"{world.daemon.public_url}/webhooks/amazon", data=big,
                               headers={"x-syncd-webhook-secret": "amzn-hook-secret"}) as resp:
        assert resp.status == 413
    for path in ("/status", "/api/products", "/"):
        async with world.http.get(f"{world.daemon.public_url}{path}") as resp:
            assert resp.status in (404, 405)
    assert world.sql("SELECT COUNT(*) FROM inbox") == before
