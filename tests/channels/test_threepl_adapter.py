"""The 3PL adapter against the simulator over loopback: paging, counts, receipts, shipments, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from pydantic import SecretStr

from syncd.capture.events import Receipt, Shipment, StockCount
from syncd.channels.base import AuthExpired, Channel, ListingRef, Permanent, Transient, WebhookReceiver
from syncd.channels.threepl import ThreePLChannel, create_channel
from syncd.config import ThreePLSettings
from syncd.domain.models import Field
from syncd.sandbox.common import OutageMode, SimServer
from syncd.sandbox.threepl import set_mode, start
from syncd.sandbox.threepl_state import ThreePLState

TOKEN = "pat-test-token-abc123"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
FIXED = datetime(2026, 10, 1, 12, 0, 0, tzinfo=UTC)


def settings(url: str, token: str = TOKEN, **kw: object) -> ThreePLSettings:
    return ThreePLSettings(
        enabled=True,
        api_base=url,
        api_token=SecretStr(token),
        webhook_secret=SecretStr(SECRET),
        location="main",
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def sim() -> AsyncIterator[tuple[ThreePLState, SimServer]]:
    state = ThreePLState(TOKEN, seed=7, retry_scale=0.001)
    state.seed([{"sku": f"SKU-{n}", "name": f"Item {n}", "on_hand": n * 10} for n in range(1, 8)])
    server = await start(state)
    yield state, server
    await server.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_factory_builds_a_channel_and_webhook_receiver(
    sim: tuple[ThreePLState, SimServer], session: aiohttp.ClientSession
) -> None:
    channel = create_channel(settings(sim[1].url), session, None)
    assert isinstance(channel, Channel)
    assert isinstance(channel, ThreePLChannel)
    receiver: WebhookReceiver = channel
    assert receiver.authenticate(None, {}, b"{}") is False
    assert set(channel.poll_intervals()) == {"stock", "receipts", "shipments"}


async def test_stock_poll_follows_cursor_pages_into_on_hand_counts(
    sim: tuple[ThreePLState, SimServer], session: aiohttp.ClientSession
) -> None:
    state, server = sim
    state.clock = lambda: FIXED
    state.create_order("amazon:1", [("SKU-3", 4)])  # committed at the 3PL must not lower the count
    channel = ThreePLChannel(settings(server.url), session, page_size=3)
    result = await channel.poll("stock", None)
    assert state.counters["calls:inventory-level"] == 3  # 7 items, 3 per page
    counts = {e.body.sku: e.body for e in result.events if isinstance(e.body, StockCount)}
    assert sorted(counts) == [f"SKU-{n}" for n in range(1, 8)]
    assert counts["SKU-3"].qty == 30
    assert all(c.location == "main" and c.source == "threepl" and c.as_of == FIXED for c in counts.values())
    assert all(e.source == "threepl" for e in result.events)
    assert result.complete_through == FIXED
    assert len({e.dedupe_key for e in result.events}) == 7


async def test_inactive_and_digital_items_are_not_counted(
    sim: tuple[ThreePLState, SimServer], session: aiohttp.ClientSession
) -> None:
    state, server = sim
    state.seed([{"sku": "OLD", "on_hand": 5, "active": False}, {"sku": "EBOOK", "on_hand": 9, "digital": True}])
    result = await ThreePLChannel(settings(server.url), session).poll("stock", None)
    skus = {e.body.sku for e in result.events if isinstance(e.body, StockCount)}
    assert "OLD" not in skus and "EBOOK" not in skus and len(skus) == 7


async def test_cycle_count_shows_in_the_next_stock_poll(
    sim: tuple[ThreePLState, SimServer], session: aiohttp.ClientSession
) -> None:
    state, server = sim
    channel = ThreePLChannel(settings(server.url), session)
    await channel.poll("stock", None)
    state.adjust("SKU-2", delta=-3)
    result = await channel.poll("stock", None)
    counts = {e.body.sku: e.body.qty for e in result.events if isinstance(e.body, StockCount)}
    assert counts["SKU-2"] == 17


async def test_bad_token_raises_auth_expired_without_the_token(
    sim: tuple[ThreePLState, SimServer], session: aiohttp.ClientSession
) -> None:
    channel = ThreePLChannel(settings(sim[1].url, token="wrong-secret-token"), session)
    with pytest.raises(AuthExpired) as caught:
        await channel.poll("stock", None)
    assert "wrong-secret-token" not in str(caught.value)
    assert "api_token" in str(caught.value)
    assert sim[0].counters["401"] == 1


async def test_simulator_answers_401_with_problem_details(
    sim: tuple[ThreePLState, SimServer], session: aiohttp.ClientSession
) -> None:
    async with session.get(f"{sim[1].url}/2026-07/inventory-level", headers={"Authorization": "Bearer x"}) as r:
        assert r.status == 401
        body = await r.json(content_type=None)
    assert body["status"] == 401 and body["title"] == "Unauthorized"


async def test_push_is_refused_as_permanent(
    sim: tuple[ThreePLState, SimServer], session: aiohttp.ClientSession
) -> None:
    channel = ThreePLChannel(settings(sim[1].url), session)
    assert channel.supports_push is False
    with pytest.raises(Permanent):
        await channel.push(ListingRef(external_id="SKU-1"), Field.QUANTITY, "5")
    assert sum(v for k, v in sim[0].counters.items() if k.startswith("calls:")) == 0


async def test_read_listings_reports_levels_and_missing_skus(
    sim: tuple[ThreePLState, SimServer], session: aiohttp.ClientSession
) -> None:
    state, server = sim
    state.create_order("mercadolibre:9", [("SKU-4", 5)])
    channel = ThreePLChannel(settings(server.url), session, page_size=2)
    seen = await channel.read_listings([ListingRef(external_id="SKU-4"), ListingRef(external_id="NOPE")])
    assert seen[0].quantity == 35 and seen[0].extra["on_hand"] == "40" and seen[0].extra["committed"] == "5"
    assert seen[1].quantity is None and seen[1].status == "missing"


async def test_receipts_poll_reports_completed_receiving_orders(
    sim: tuple[ThreePLState, SimServer], session: aiohttp.ClientSession
) -> None:
    state, server = sim
    channel = ThreePLChannel(settings(server.url), session)
    pending = state.receive([("SKU-1", 12)], "PO-1", complete=False)
    first = await channel.poll("receipts", None)
    assert first.events == []
    state.complete_wro(pending.id)
    second = await channel.poll("receipts", first.cursor)
    receipts = [e.body for e in second.events if isinstance(e.body, Receipt)]
    assert [(r.sku, r.qty, r.ref, r.location) for r in receipts] == [("SKU-1", 12, f"wro:{pending.id}", "main")]
    assert state.items[min(state.items)].on_hand == 22
    assert second.cursor is not None and second.cursor > (first.cursor or "")


async def test_shipments_poll_finds_a_shipment_whose_webhook_was_lost(
    sim: tuple[ThreePLState, SimServer], session: aiohttp.ClientSession
) -> None:
    state, server = sim
    state.webhooks.subscribe("http://127.0.0.1:9/never", ["order.shipped"], SECRET)
    state.webhooks.set_faults(loss=1.0, duplicate=0.0, reorder_max_delay=0.0, seed=1)
    state.create_order("amazon:111-222", [("SKU-5", 2), ("SKU-6", 1)])
    state.ship("amazon:111-222")
    await state.webhooks.idle()
    assert state.counters["webhooks_lost"] == 1 and state.counters["webhook_attempts"] == 0
    channel = ThreePLChannel(settings(server.url), session)
    result = await channel.poll("shipments", None)
    shipped = sorted((e.body.sku, e.body.qty, e.body.order_ref) for e in result.events if isinstance(e.body, Shipment))
    assert shipped == [("SKU-5", 2, "amazon:111-222"), ("SKU-6", 1, "amazon:111-222")]
    assert state.items[min(state.items) + 4].on_hand == 48
    again = await channel.poll("shipments", result.cursor)
    assert {e.dedupe_key for e in again.events} == {e.dedupe_key for e in result.events}


async def test_unshipped_orders_give_no_shipment_events(
    sim: tuple[ThreePLState, SimServer], session: aiohttp.ClientSession
) -> None:
    sim[0].create_order("amazon:open", [("SKU-1", 1)])
    result = await ThreePLChannel(settings(sim[1].url), session).poll("shipments", None)
    assert result.events == []


async def test_unknown_poll_resource_is_permanent(
    sim: tuple[ThreePLState, SimServer], session: aiohttp.ClientSession
) -> None:
    with pytest.raises(Permanent):
        await ThreePLChannel(settings(sim[1].url), session).poll("orders", None)


async def test_5xx_outage_is_transient(sim: tuple[ThreePLState, SimServer], session: aiohttp.ClientSession) -> None:
    await set_mode(sim[0], OutageMode.ERROR)
    with pytest.raises(Transient):
        await ThreePLChannel(settings(sim[1].url), session).poll("stock", None)


async def test_refused_connection_is_transient_and_recovers(
    sim: tuple[ThreePLState, SimServer], session: aiohttp.ClientSession
) -> None:
    state, server = sim
    channel = ThreePLChannel(settings(server.url), session)
    await set_mode(state, OutageMode.REFUSE)
    with pytest.raises(Transient):
        await channel.poll("stock", None)
    await set_mode(state, OutageMode.UP)
    assert len((await channel.poll("stock", None)).events) == 7


async def test_timeout_outage_is_transient(sim: tuple[ThreePLState, SimServer], session: aiohttp.ClientSession) -> None:
    await set_mode(sim[0], OutageMode.TIMEOUT)
    channel = ThreePLChannel(settings(sim[1].url, request_timeout_seconds=0.2), session)
    with pytest.raises(Transient):
        await channel.poll("stock", None)


async def test_paging_link_to_another_host_is_refused(session: aiohttp.ClientSession) -> None:
    channel = ThreePLChannel(settings("http://127.0.0.1:1"), session)
    with pytest.raises(Permanent):
        channel.client._follow("http://evil.example/2026-07/inventory-level?Cursor=x")
    assert (
        channel.client._follow("/2026-07/inventory-level?Cursor=x")
        == "http://127.0.0.1:1/2026-07/inventory-level?Cursor=x"
    )


async def test_closed_channel_refuses_calls(
    sim: tuple[ThreePLState, SimServer], session: aiohttp.ClientSession
) -> None:
    channel = ThreePLChannel(settings(sim[1].url), session)
    await channel.close()
    with pytest.raises(Permanent):
        await channel.poll("stock", None)
