"""MercadoLibre adapter ↔ simulator: pushes, multiget read-back, stock/status coupling, orders, 429s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from pydantic import SecretStr

from syncd.capture.events import ListingObservation, OrderUpsert
from syncd.channels.base import ListingRef, Permanent, RateLimited, Transient
from syncd.channels.mercadolibre import MercadoLibreChannel
from syncd.config import MercadoLibreSettings
from syncd.domain.models import Field, OrderState
from syncd.sandbox.common import SimServer
from syncd.sandbox.mercadolibre import MercadoLibreSim, create_app
from syncd.sandbox.mercadolibre_core import OPERATIONS, SimConfig
from tests.fakes import MemoryTokens


@dataclass
class Harness:
    sim: MercadoLibreSim
    url: str
    session: aiohttp.ClientSession
    channel: MercadoLibreChannel

    async def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.channel.auth.token()}"}


@pytest.fixture
async def ml() -> AsyncIterator[Harness]:
    sim = MercadoLibreSim(SimConfig(seed=5, rate_limits=dict.fromkeys(OPERATIONS, (1000.0, 1000.0))))
    server = SimServer(create_app(sim))
    sim.server = server
    await server.start()
    settings = MercadoLibreSettings(
        enabled=True,
        api_base=server.url,
        token_url=f"{server.url}/oauth/token",
        user_id=sim.config.user_id,
        application_id=sim.config.application_id,
        client_id=sim.config.client_id,
        client_secret=SecretStr(sim.config.client_secret),
        refresh_token=SecretStr(sim.oauth.current_refresh_token or ""),
        # Client-side limiters are exercised elsewhere; here they would only slow the test down.
        rate_limits=dict.fromkeys(OPERATIONS, 1000.0),
    )
    async with aiohttp.ClientSession() as session:
        yield Harness(sim, server.url, session, MercadoLibreChannel(settings, session, MemoryTokens()))
    await server.stop()


def _two_variations(ml: Harness, red: int = 5, blue: int = 3) -> tuple[str, str, str]:
    item = ml.sim.market.seed_item(
        {
            "title": "Remera",
            "price": 250,
            "variations": [
                {"available_quantity": red, "seller_sku": "TEE-R"},
                {"available_quantity": blue, "seller_sku": "TEE-B"},
            ],
        }
    )
    return item.id, str(item.variations[0].id), str(item.variations[1].id)


async def test_quantity_push_to_one_variation_keeps_the_others_and_reads_back(ml: Harness) -> None:
    item_id, red, blue = _two_variations(ml)
    ml.sim.market.sale(item_id, int(blue), 1)  # sales history that a dropped variation would lose
    await ml.channel.push(ListingRef(item_id, red), Field.QUANTITY, "2")
    red_obs, blue_obs = await ml.channel.read_listings([ListingRef(item_id, red), ListingRef(item_id, blue)])
    assert (red_obs.quantity, blue_obs.quantity) == (2, 2)
    assert red_obs.status == blue_obs.status == "active"
    assert red_obs.price == "250"
    item = ml.sim.market.items[item_id]
    assert [str(v.id) for v in item.variations] == [red, blue]
    assert item.variations[1].sold_quantity == 1


async def test_quantity_zero_auto_pauses_and_restock_reactivates(ml: Harness) -> None:
    item = ml.sim.market.seed_item({"title": "Yerba", "price": 10, "available_quantity": 4})
    ref = ListingRef(item.id)
    await ml.channel.push(ref, Field.QUANTITY, "0")
    assert (item.status, item.sub_status) == ("paused", ["out_of_stock"])
    assert item.status_log[-1]["by"] == "mercadolibre"
    [obs] = await ml.channel.read_listings([ref])
    assert obs.quantity == 0
    assert obs.status == "active"  # the seller never asked for the pause
    assert obs.extra == {"ml_status": "paused", "paused_by": "mercadolibre", "sub_status": "out_of_stock"}
    await ml.channel.push(ref, Field.QUANTITY, "3")
    assert (item.status, item.sub_status) == ("active", [])
    [obs] = await ml.channel.read_listings([ref])
    assert (obs.quantity, obs.status, obs.extra["ml_status"]) == (3, "active", "active")


async def test_seller_pause_survives_restock(ml: Harness) -> None:
    item = ml.sim.market.seed_item({"title": "Bombilla", "price": 10, "available_quantity": 4})
    ref = ListingRef(item.id)
    await ml.channel.push(ref, Field.STATUS, "paused")
    await ml.channel.push(ref, Field.QUANTITY, "0")
    await ml.channel.push(ref, Field.QUANTITY, "6")
    [obs] = await ml.channel.read_listings([ref])
    assert (obs.quantity, obs.status, obs.extra["paused_by"]) == (6, "paused", "seller")
    await ml.channel.push(ref, Field.STATUS, "active")
    assert item.status == "active"


async def test_activating_without_stock_is_permanent(ml: Harness) -> None:
    item = ml.sim.market.seed_item({"title": "Termo", "price": 10, "available_quantity": 1})
    ref = ListingRef(item.id)
    await ml.channel.push(ref, Field.STATUS, "paused")
    await ml.channel.push(ref, Field.QUANTITY, "0")
    with pytest.raises(Permanent, match="without stock"):
        await ml.channel.push(ref, Field.STATUS, "active")


async def test_price_push_and_price_automation_refusal(ml: Harness) -> None:
    item = ml.sim.market.seed_item({"title": "Mate", "price": 10, "available_quantity": 1})
    await ml.channel.push(ListingRef(item.id), Field.PRICE, "12.50")
    [obs] = await ml.channel.read_listings([ListingRef(item.id)])
    assert obs.price == "12.5"
    automated = ml.sim.market.seed_item(
        {"title": "Auto", "price": 10, "available_quantity": 1, "price_automation": True}
    )
    with pytest.raises(Permanent, match="400"):
        await ml.channel.push(ListingRef(automated.id), Field.PRICE, "11")


async def test_unknown_variation_or_bad_value_is_permanent(ml: Harness) -> None:
    item_id, _, _ = _two_variations(ml)
    with pytest.raises(Permanent, match="not on item"):
        await ml.channel.push(ListingRef(item_id, "999"), Field.QUANTITY, "1")
    with pytest.raises(Permanent, match="invalid quantity"):
        await ml.channel.push(ListingRef(item_id, "999"), Field.QUANTITY, "-1")
    with pytest.raises(Permanent, match="invalid item id"):
        await ml.channel.push(ListingRef("../oauth/token"), Field.QUANTITY, "1")


async def test_multiget_chunks_by_twenty_and_reports_missing(ml: Harness) -> None:
    ids = [ml.sim.market.seed_item({"title": f"I{n}", "price": 5, "available_quantity": n}).id for n in range(25)]
    refs = [ListingRef(i) for i in ids] + [ListingRef("MLM1"), ListingRef(ids[0], "123")]
    observations = await ml.channel.read_listings(refs)
    assert [o.quantity for o in observations[:25]] == list(range(25))
    assert [o.status for o in observations[25:]] == ["not_found", "not_found"]
    assert ml.sim.calls["items_multiget"] == 2
    async with ml.session.get(f"{ml.url}/items", params={"ids": ",".join(ids[:21])}) as resp:
        assert resp.status == 400  # at most 20 ids
    async with ml.session.get(f"{ml.url}/items", params={"ids": "MLM1"}) as resp:
        assert await resp.json() == [
            {
                "code": 404,
                "body": {"id": "MLM1", "error": "resource not found", "message": "Item with id MLM1 not found"},
            }
        ]


async def test_listings_poll_observes_every_variation(ml: Harness) -> None:
    item_id, red, blue = _two_variations(ml)
    plain = ml.sim.market.seed_item({"title": "Plain", "price": 5, "available_quantity": 7})
    result = await ml.channel.poll("listings", None)
    seen = {
        (e.body.external_id, e.body.variation_id): e.body.quantity
        for e in result.events
        if isinstance(e.body, ListingObservation)
    }
    assert seen == {(item_id, red): 5, (item_id, blue): 3, (plain.id, None): 7}
    again = await ml.channel.poll("listings", None)
    assert {e.dedupe_key for e in again.events} == {e.dedupe_key for e in result.events}


async def test_orders_poll_pages_through_search_and_resumes_from_cursor(ml: Harness) -> None:
    item = ml.sim.market.seed_item({"title": "Bulk", "price": 3, "available_quantity": 500})
    orders = [ml.sim.market.sale(item.id, None, 1) for _ in range(60)]
    first = await ml.channel.poll("orders", None)
    upserts = [e.body for e in first.events if isinstance(e.body, OrderUpsert)]
    assert sorted(u.order_id for u in upserts) == sorted(str(o.id) for o in orders)
    assert {u.state for u in upserts} == {OrderState.PAID}
    assert ml.sim.calls["orders_search"] == 2  # 50 + 10
    assert first.cursor is not None and first.complete_through is not None
    ml.sim.market.order_action(orders[3].id, "cancel")
    second = await ml.channel.poll("orders", first.cursor)
    new_keys = {e.dedupe_key for e in second.events} - {e.dedupe_key for e in first.events}
    [changed] = [e.body for e in second.events if e.dedupe_key in new_keys and isinstance(e.body, OrderUpsert)]
    assert (changed.order_id, changed.state) == (str(orders[3].id), OrderState.CANCELLED)


async def test_orders_search_paging_object_is_the_real_shape(ml: Harness) -> None:
    item = ml.sim.market.seed_item({"title": "Bulk", "price": 3, "available_quantity": 50})
    for _ in range(7):
        ml.sim.market.sale(item.id, None, 1)
    params = {"seller": str(ml.sim.config.user_id), "sort": "date_asc", "offset": "5", "limit": "5"}
    async with ml.session.get(f"{ml.url}/orders/search", params=params, headers=await ml.bearer()) as resp:
        body = await resp.json()
    assert body["paging"] == {"total": 7, "offset": 5, "limit": 5}
    assert len(body["results"]) == 2
    assert body["query"] == "" and body["display"] == "complete" and body["sort"]["id"] == "date_asc"


async def test_fetch_follows_an_order_from_payment_to_delivery(ml: Harness) -> None:
    item_id, red, _ = _two_variations(ml)
    order = ml.sim.market.sale(item_id, int(red), 2, status="payment_required")
    resource = f"/orders/{order.id}"

    async def state() -> tuple[OrderState, str]:
        [event] = await ml.channel.fetch("orders_v2", resource)
        assert isinstance(event.body, OrderUpsert)
        return event.body.state, event.dedupe_key

    pending, k1 = await state()
    [event] = await ml.channel.fetch("orders_v2", resource)
    assert isinstance(event.body, OrderUpsert)
    line = event.body.lines[0]
    assert (line.external_id, line.variation_id, line.qty) == (item_id, red, 2)
    ml.sim.clock.advance(1)
    ml.sim.market.order_action(order.id, "pay")
    paid, k2 = await state()
    ml.sim.clock.advance(1)
    ml.sim.market.order_action(order.id, "ship")  # only the shipment changes
    shipped, k3 = await state()
    ml.sim.clock.advance(1)
    ml.sim.market.order_action(order.id, "deliver")
    calls_before = ml.sim.calls["shipments_get"]
    delivered, k4 = await state()
    assert (pending, paid, shipped, delivered) == (
        OrderState.PENDING,
        OrderState.PAID,
        OrderState.SHIPPED,
        OrderState.SHIPPED,
    )
    assert len({k1, k2, k3, k4}) == 4
    assert ml.sim.calls["shipments_get"] == calls_before  # the `delivered` tag is enough
    [via_shipment] = await ml.channel.fetch("shipments", f"/shipments/{order.shipping_id}")
    assert via_shipment.dedupe_key == k4


async def test_fetch_refuses_resources_it_does_not_recognize(ml: Harness) -> None:
    with pytest.raises(Permanent):
        await ml.channel.fetch("orders_v2", "/orders/1/../../oauth/token")
    with pytest.raises(Permanent):
        await ml.channel.fetch("questions", "/questions/1")


async def test_rate_limit_answers_429_in_the_platform_shape(ml: Harness) -> None:
    ml.sim.set_rate_limits({"items_get": (0.001, 1.0)})
    item = ml.sim.market.seed_item({"title": "Limited", "price": 5, "available_quantity": 1})
    async with ml.session.get(f"{ml.url}/items/{item.id}") as resp:
        assert resp.status == 200
    async with ml.session.get(f"{ml.url}/items/{item.id}") as resp:
        assert resp.status == 429
        assert "Retry-After" not in resp.headers
        assert await resp.json() == {
            "message": "Too Many Requests",
            "error": "local_rate_limited",
            "status": 429,
            "cause": [],
        }
    ml.sim.plain_text_429 = True
    async with ml.session.get(f"{ml.url}/items/{item.id}") as resp:
        assert (resp.status, await resp.text()) == (429, "local_rate_limited")
    ml.sim.set_rate_limits({"items_multiget": (0.001, 0.0)})
    with pytest.raises(RateLimited) as caught:
        await ml.channel.read_listings([ListingRef(item.id)])
    assert caught.value.retry_after is None
    assert ml.sim.rate_limited["items_multiget"] == 1


async def test_stock_topic_resolves_to_the_user_products_listings(ml: Harness) -> None:
    item_id, red, blue = _two_variations(ml)
    up = ml.sim.market.items[item_id].variations[0].user_product_id
    async with ml.session.get(f"{ml.url}/user-products/{up}/stock", headers=await ml.bearer()) as resp:
        assert resp.headers["x-version"] == "1"
        assert (await resp.json())["locations"] == [{"type": "selling_address", "quantity": 5}]
    ml.sim.market.sale(item_id, int(red), 1)
    async with ml.session.get(f"{ml.url}/user-products/{up}/stock", headers=await ml.bearer()) as resp:
        assert resp.headers["x-version"] == "2"  # every stock change bumps it, sales included
    events = await ml.channel.fetch("stock-locations", f"/user-products/{up}/stock")
    seen = {(e.body.variation_id, e.body.quantity) for e in events if isinstance(e.body, ListingObservation)}
    assert seen == {(red, 4), (blue, 3)}


async def test_control_plane_drives_sales_and_outages_over_http(ml: Harness) -> None:
    async with ml.session.post(
        f"{ml.url}/_sim/items", json={"items": [{"title": "Mate", "available_quantity": 2}]}
    ) as r:
        assert r.status == 201
        item_id = (await r.json())["items"][0]["id"]
    async with ml.session.post(f"{ml.url}/_sim/sale", json={"item_id": item_id, "quantity": 2}) as r:
        order = await r.json()
        assert (r.status, order["status"]) == (201, "paid")
    async with ml.session.get(f"{ml.url}/_sim/items/{item_id}") as r:
        item = await r.json()
        assert (item["available_quantity"], item["status"], item["sub_status"]) == (0, "paused", ["out_of_stock"])
    async with ml.session.post(f"{ml.url}/_sim/sale", json={"item_id": item_id}) as r:
        assert r.status == 409
    async with ml.session.post(f"{ml.url}/_sim/orders/{order['id']}/cancel", json={}) as r:
        assert (await r.json())["status"] == "cancelled"
    [obs] = await ml.channel.read_listings([ListingRef(item_id)])
    assert (obs.quantity, obs.extra["ml_status"]) == (2, "active")  # restocked by the cancellation
    async with ml.session.post(f"{ml.url}/_sim/outage", json={"mode": "5xx"}) as r:
        assert r.status == 200
    await asyncio.sleep(0)  # the switch runs right after the response
    with pytest.raises(Transient):
        await ml.channel.read_listings([ListingRef(item_id)])
    async with ml.session.post(f"{ml.url}/_sim/outage", json={"mode": "refuse", "seconds": 0.2}) as r:
        assert r.status == 200
    await asyncio.sleep(0.05)
    with pytest.raises(Transient):
        await ml.channel.read_listings([ListingRef(item_id)])
    await asyncio.sleep(0.3)
    [obs] = await ml.channel.read_listings([ListingRef(item_id)])
    assert obs.quantity == 2
    async with ml.session.get(f"{ml.url}/_sim/counters") as r:
        counters = await r.json()
    assert counters["calls"]["items_multiget"] >= 2 and counters["refreshes"] == 1
