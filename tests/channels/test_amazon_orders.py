"""Polling Amazon orders and FBA stock, and resolving ORDER_CHANGE pointers, over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest

from syncd.capture.events import OrderUpsert, StockCount
from syncd.channels.amazon import AmazonChannel
from syncd.channels.amazon.mapping import parse_time
from syncd.channels.base import Permanent
from syncd.config import AmazonSettings
from syncd.domain.models import OrderState
from syncd.sandbox.amazon import AmazonSimulator, SimConfig

FBA_RATE = 20.0


@pytest.fixture
async def sim() -> AsyncIterator[AmazonSimulator]:
    config = SimConfig(consistency_delay=0.0, search_lag=0.0, fba_page_size=2)
    config.plans["getInventorySummaries"] = (FBA_RATE, 5)  # the published 2/s, burst 2, is slow for tests
    async with AmazonSimulator(config) as running:
        market = running.market
        for n in range(7):
            market.seed_listing({"sku": f"SKU-{n}", "quantity": 50, "price": f"{10 + n}.00"})
        market.seed_listing({"sku": "KETTLE", "fba": True, "price": "59.00"})
        for n, sku in enumerate(("KETTLE", "FBA-2", "FBA-3", "FBA-4", "FBA-5")):
            market.seed_fba({"sku": sku, "fulfillable": 10 + n, "reserved": 1})
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def amazon(sim: AmazonSimulator, session: aiohttp.ClientSession) -> AmazonChannel:
    limits = {"getInventorySummaries": FBA_RATE}
    settings = AmazonSettings(**sim.client_settings(fba_location="fba-us", rate_limits=limits))
    return AmazonChannel(settings, session, orders_page_size=2)


def upserts(events: list) -> dict[str, OrderUpsert]:
    return {e.body.order_id: e.body for e in events if isinstance(e.body, OrderUpsert)}


async def test_order_poll_pages_through_every_order_with_the_same_filters(sim, amazon) -> None:
    ids = [
        sim.market.make_sale({"items": [{"sku": f"SKU-{n}", "qty": 1 + n % 2}]}).order_id for n in range(7)
    ]
    result = await amazon.poll("orders", None)
    assert set(upserts(result.events)) == set(ids)
    assert sim.market.counters.calls["searchOrders"] == 4  # 2 + 2 + 2 + 1
    line = upserts(result.events)[ids[3]].lines[0]
    assert (line.external_id, line.qty, str(line.unit_price)) == ("SKU-3", 2, "13.00")
    assert result.complete_through is not None
    assert result.cursor is not None and parse_time(result.cursor) == result.complete_through


async def test_changing_a_filter_with_a_pagination_token_is_refused(sim, amazon, session) -> None:
    for n in range(3):
        sim.market.make_sale({"items": [{"sku": f"SKU-{n}", "qty": 1}]})
    token = await amazon.client.auth.access_token()
    base = f"{sim.url}/orders/2026-01-01/orders"
    headers = {"x-amz-access-token": token}
    query = {"lastUpdatedAfter": "2020-01-01T00:00:00Z", "maxResultsPerPage": "1"}
    async with session.get(base, params=query, headers=headers) as resp:
        first = await resp.json()
    next_token = first["pagination"]["nextToken"]
    # maxResultsPerPage and includedData may change between pages ...
    allowed = dict(query, paginationToken=next_token, maxResultsPerPage="2", includedData="FULFILLMENT")
    async with session.get(base, params=allowed, headers=headers) as resp:
        assert resp.status == 200
        assert len((await resp.json())["orders"]) == 2
    # ... any other parameter may not.
    changed = dict(query, paginationToken=next_token, lastUpdatedAfter="2021-01-01T00:00:00Z")
    async with session.get(base, params=changed, headers=headers) as resp:
        assert resp.status == 400
        assert (await resp.json())["errors"][0]["code"] == "InvalidInput"
        assert "x-amzn-RateLimit-Limit" in resp.headers


async def test_order_lifecycle_maps_to_pending_paid_shipped_cancelled(sim, amazon) -> None:
    market = sim.market
    pending = market.make_sale({"items": [{"sku": "SKU-0", "qty": 1}], "status": "PENDING"}).order_id
    partial = market.make_sale({"items": [{"sku": "SKU-1", "qty": 1}, {"sku": "SKU-2", "qty": 1}]}).order_id
    cancelled = market.make_sale({"items": [{"sku": "SKU-3", "qty": 2}]}).order_id
    first = await amazon.poll("orders", None)
    assert upserts(first.events)[pending].state is OrderState.PENDING
    market.change_order(pending, "pay")
    market.change_order(partial, "ship_partial")
    market.change_order(cancelled, "cancel")
    second = await amazon.poll("orders", first.cursor)
    states = {oid: body.state for oid, body in upserts(second.events).items()}
    assert states == {pending: OrderState.PAID, partial: OrderState.PAID, cancelled: OrderState.CANCELLED}
    market.change_order(partial, "ship")
    third = await amazon.poll("orders", second.cursor)
    assert upserts(third.events)[partial].state is OrderState.SHIPPED
    # A cancel gives the units back to the listing.
    assert market.listings["SKU-3"].mfn_quantity() == 50


async def test_overlapping_polls_repeat_events_with_identical_dedupe_keys(sim, amazon) -> None:
    sim.market.make_sale({"items": [{"sku": "SKU-0", "qty": 1}]})
    first = await amazon.poll("orders", None)
    second = await amazon.poll("orders", first.cursor)  # inside the 5-minute overlap
    assert [e.dedupe_key for e in second.events] == [e.dedupe_key for e in first.events]


async def test_order_change_pointer_is_fetched_with_get_order(sim, amazon) -> None:
    order_id = sim.market.make_sale({"items": [{"sku": "SKU-5", "qty": 3}]}).order_id
    sim.market.change_order(order_id, "ship")
    [event] = await amazon.fetch("ORDER_CHANGE", order_id)
    assert isinstance(event.body, OrderUpsert)
    assert (event.body.state, event.body.lines[0].qty) == (OrderState.SHIPPED, 3)
    assert sim.market.counters.calls["getOrder"] == 1
    with pytest.raises(Permanent, match="404"):
        await amazon.fetch("ORDER_CHANGE", "000-0000000-0000000")
    with pytest.raises(Permanent):
        await amazon.fetch("ANY_OFFER_CHANGED", order_id)


async def test_fba_poll_counts_fulfillable_units_and_then_only_changes(sim, amazon) -> None:
    for item in sim.market.fba.values():
        item.updated -= timedelta(hours=1)  # counted long before the first poll
    first = await amazon.poll("fba_stock", None)
    counts = {e.body.sku: e.body for e in first.events if isinstance(e.body, StockCount)}
    assert {sku: c.qty for sku, c in counts.items()} == {
        "KETTLE": 10,
        "FBA-2": 11,
        "FBA-3": 12,
        "FBA-4": 13,
        "FBA-5": 14,
    }
    assert all(c.location == "fba-us" and c.source == "amazon" for c in counts.values())
    assert sim.market.counters.calls["getInventorySummaries"] == 3  # 2 per page
    sim.market.make_sale({"items": [{"sku": "KETTLE", "qty": 2}], "fulfilled_by": "AMAZON"})
    second = await amazon.poll("fba_stock", first.cursor)
    assert [(e.body.sku, e.body.qty) for e in second.events if isinstance(e.body, StockCount)] == [
        ("KETTLE", 8)
    ]


async def test_fba_next_token_carries_start_date_time_and_expires(sim, amazon, session) -> None:
    token = await amazon.client.auth.access_token()
    base = f"{sim.url}/fba/inventory/v1/summaries"
    headers = {"x-amz-access-token": token}
    query = {
        "granularityType": "Marketplace",
        "granularityId": "ATVPDKIKX0DER",
        "marketplaceIds": "ATVPDKIKX0DER",
        "startDateTime": "2020-01-01T00:00:00Z",
    }
    async with session.get(base, params=query, headers=headers) as resp:
        next_token = (await resp.json())["pagination"]["nextToken"]
    async with session.get(base, params={**query, "nextToken": next_token}, headers=headers) as resp:
        assert resp.status == 200
    sim.market.clock.advance(31)
    async with session.get(base, params={**query, "nextToken": next_token}, headers=headers) as resp:
        assert resp.status == 400
        assert "expired" in (await resp.json())["errors"][0]["details"]


async def test_fba_poll_without_a_location_is_permanent(sim, session) -> None:
    amazon = AmazonChannel(AmazonSettings(**sim.client_settings()), session)
    with pytest.raises(Permanent, match="fba_location"):
        await amazon.poll("fba_stock", None)
    with pytest.raises(Permanent, match="unknown poll resource"):
        await amazon.poll("stock", None)


async def test_search_orders_validates_its_window_like_amazon(sim, amazon, session) -> None:
    token = await amazon.client.auth.access_token()
    headers = {"x-amz-access-token": token}
    base = f"{sim.url}/orders/2026-01-01/orders"
    now = sim.market.clock.now()
    for query in (
        {},
        {"createdAfter": "2026-01-01T00:00:00Z", "lastUpdatedAfter": "2026-01-01T00:00:00Z"},
        {"lastUpdatedAfter": "2026-01-01T00:00:00Z", "lastUpdatedBefore": now.isoformat()},
        {"lastUpdatedAfter": "2026-01-01T00:00:00Z", "maxResultsPerPage": "101"},
        {"lastUpdatedAfter": "2026-01-01T00:00:00Z", "includedData": "EVERYTHING"},
    ):
        async with session.get(base, params=query, headers=headers) as resp:
            assert resp.status == 400, query
    async with session.get(base, params={"createdAfter": "2020-01-01T00:00:00Z"}, headers=headers) as resp:
        body = await resp.json()
    assert "createdBefore" in body and "lastUpdatedBefore" not in body
