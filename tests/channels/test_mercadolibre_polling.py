"""MercadoLibre call economy: shipment lookups per order version, incremental missed_feeds, limiter margin."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from syncd.capture.events import Event, Notification, OrderUpsert
from syncd.channels.mercadolibre import MercadoLibreChannel
from syncd.channels.mercadolibre.client import limiter_plan
from syncd.channels.mercadolibre.models import Order, Shipment
from syncd.channels.mercadolibre.shipments import SHIPMENT_RECHECK, ShipmentMemo
from syncd.config import MercadoLibreSettings
from syncd.domain.models import OrderState
from syncd.sandbox.common import SimServer
from syncd.sandbox.mercadolibre import MercadoLibreSim, create_app
from syncd.sandbox.mercadolibre_core import OPERATIONS, SimConfig
from syncd.sandbox.mercadolibre_notify import DeliveryFaults
from tests.fakes import MemoryTokens


@dataclass
class Clock:
    """The adapter's clock, moved by hand."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Harness:
    sim: MercadoLibreSim
    server: SimServer
    session: aiohttp.ClientSession
    tokens: MemoryTokens
    clock: Clock
    channel: MercadoLibreChannel

    def new_channel(self, rate_limits: dict[str, float] | None = None) -> MercadoLibreChannel:
        """Another process of the adapter (same stored tokens)."""
        limits = rate_limits or self.channel.settings.rate_limits
        settings = self.channel.settings.model_copy(update={"rate_limits": limits})
        return MercadoLibreChannel(settings, self.session, self.tokens, clock=self.clock)

    def calls(self, op: str) -> int:
        return self.sim.calls[op]


@pytest.fixture
async def ml() -> AsyncIterator[Harness]:
    config = SimConfig(
        seed=11,
        # Deliveries are "lost" before any POST (loss 1.0), so nothing needs to listen here.
        notify_url="http://127.0.0.1:9/unused",
        topics=("orders_v2", "items", "shipments"),
        retry_delays=(),
        rate_limits=dict.fromkeys(OPERATIONS, (1000.0, 1000.0)),
    )
    sim = MercadoLibreSim(config)
    sim.notifier.set_faults(DeliveryFaults(loss_probability=1.0, seed=1))
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
        site_id=sim.config.site_id,
        rate_limits=dict.fromkeys(OPERATIONS, 1000.0),
    )
    clock = Clock()
    tokens = MemoryTokens()
    async with aiohttp.ClientSession() as session:
        channel = MercadoLibreChannel(settings, session, tokens, clock=clock)
        yield Harness(sim, server, session, tokens, clock, channel)
        await sim.notifier.close()
    await server.stop()


def _upserts(events: list[Event]) -> dict[str, Event]:
    return {e.body.order_id: e for e in events if isinstance(e.body, OrderUpsert)}


async def _sales(ml: Harness, count: int, item_id: str | None = None) -> list[int]:
    """`count` sales 1 ms apart on the simulator's clock (distinct `received` stamps), all lost."""
    if item_id is None:
        item_id = ml.sim.market.seed_item({"title": "Bulk", "price": 3, "available_quantity": 5000}).id
    ids = []
    for _ in range(count):
        ml.sim.clock.advance(0.001)
        ids.append(ml.sim.market.sale(item_id, None, 1).id)
    await ml.sim.notifier.drain()
    return ids


def _resources(events: list[Event]) -> list[str]:
    return sorted(e.body.resource for e in events if isinstance(e.body, Notification))


# ----- shipments: one lookup per order version ----------------------------------------------------


async def test_orders_backstop_reads_a_shipment_once_per_order_version(ml: Harness) -> None:
    item = ml.sim.market.seed_item({"title": "Mate", "price": 5, "available_quantity": 100})
    orders = [ml.sim.market.sale(item.id, None, 1) for _ in range(12)]
    pending = ml.sim.market.sale(item.id, None, 1, status="payment_required")
    first = _upserts((await ml.channel.poll("orders", None)).events)
    assert ml.calls("shipments_get") == 12  # the unpaid order cannot be shipped: no lookup
    second = _upserts((await ml.channel.poll("orders", None)).events)
    assert ml.calls("shipments_get") == 12  # nothing moved: nothing asked again
    assert {k: e.dedupe_key for k, e in second.items()} == {k: e.dedupe_key for k, e in first.items()}

    # An order that moves is looked up again; a cancelled one needs no shipment at all.
    ml.sim.clock.advance(1)
    ml.sim.market.order_action(pending.id, "pay")
    ml.sim.market.order_action(orders[0].id, "cancel")
    third = _upserts((await ml.channel.poll("orders", None)).events)
    assert ml.calls("shipments_get") == 13
    assert third[str(pending.id)].body.state is OrderState.PAID  # type: ignore[union-attr]
    assert third[str(orders[0].id)].body.state is OrderState.CANCELLED  # type: ignore[union-attr]


async def test_dispatch_seen_by_a_fetch_is_what_the_backstop_reports_after(ml: Harness) -> None:
    item = ml.sim.market.seed_item({"title": "Termo", "price": 5, "available_quantity": 10})
    order = ml.sim.market.sale(item.id, None, 1)
    await ml.channel.poll("orders", None)
    ml.sim.clock.advance(1)
    ml.sim.market.order_action(order.id, "ship")  # only the shipment changes
    before = ml.calls("shipments_get")
    [fetched] = await ml.channel.fetch("shipments", f"/shipments/{order.shipping_id}")
    assert ml.calls("shipments_get") == before + 1  # the shipment read is reused for the order
    assert isinstance(fetched.body, OrderUpsert) and fetched.body.state is OrderState.SHIPPED
    [polled] = (await ml.channel.poll("orders", None)).events
    assert polled.dedupe_key == fetched.dedupe_key  # same state, same key, no new lookup
    assert ml.calls("shipments_get") == before + 1


async def test_backstop_rechecks_an_open_shipment_after_a_while(ml: Harness) -> None:
    item = ml.sim.market.seed_item({"title": "Yerba", "price": 5, "available_quantity": 10})
    order = ml.sim.market.sale(item.id, None, 1)
    [paid] = (await ml.channel.poll("orders", None)).events
    ml.sim.clock.advance(1)
    ml.sim.market.order_action(order.id, "ship")  # its notification is lost
    [still] = (await ml.channel.poll("orders", None)).events
    assert still.dedupe_key == paid.dedupe_key and ml.calls("shipments_get") == 1
    ml.clock.now += SHIPMENT_RECHECK
    [shipped] = (await ml.channel.poll("orders", None)).events
    assert isinstance(shipped.body, OrderUpsert) and shipped.body.state is OrderState.SHIPPED
    assert ml.calls("shipments_get") == 2
    ml.clock.now += SHIPMENT_RECHECK
    await ml.channel.poll("orders", None)
    assert ml.calls("shipments_get") == 2  # a dispatched shipment is settled: never asked again


def _order(order_id: int, updated: datetime) -> Order:
    return Order.model_validate(
        {
            "id": order_id,
            "status": "paid",
            "last_updated": updated.isoformat(),
            "shipping": {"id": order_id + 1},
            "order_items": [{"item": {"id": "MLM1"}, "quantity": 1}],
        }
    )


def _shipment(order_id: int, status: str) -> Shipment:
    return Shipment(id=order_id + 1, order_id=order_id, status=status)


def test_shipment_memo_is_a_bounded_lru_keyed_to_the_order_version() -> None:
    memo = ShipmentMemo(size=2)
    t0 = datetime(2026, 8, 1, tzinfo=UTC)
    a, b, c = _order(10, t0), _order(20, t0), _order(30, t0)
    memo.remember(a, _shipment(10, "ready_to_ship"), t0)
    memo.remember(b, _shipment(20, "ready_to_ship"), t0)
    assert memo.recall(a, t0) is not None  # a is now the most recently used
    memo.remember(c, _shipment(30, "ready_to_ship"), t0)
    assert memo.recall(b, t0) is None and memo.recall(a, t0) is not None and memo.recall(c, t0) is not None
    assert memo.recall(_order(10, t0 + timedelta(seconds=1)), t0) is None  # the order moved on
    # An older read finishing last does not replace a newer one.
    memo.remember(a, _shipment(10, "shipped"), t0 + timedelta(seconds=2))
    memo.remember(a, _shipment(10, "ready_to_ship"), t0 + timedelta(seconds=1))
    known = memo.recall(a, t0 + timedelta(days=1))
    assert known is not None and known.status == "shipped"  # settled: never stale


# ----- missed_feeds: read only what earlier polls have not ----------------------------------------


async def test_routine_missed_feeds_poll_costs_one_call_per_topic(ml: Harness) -> None:
    orders = await _sales(ml, 120)
    first = await ml.channel.poll("missed_feeds", None)
    assert len(_resources(first.events)) == 240  # 120 orders_v2 + 120 items
    assert ml.calls("missed_feeds") == 3 + 3 + 1  # 50 + 50 + 20 per topic; shipments empty
    quiet = await ml.channel.poll("missed_feeds", first.cursor)
    assert quiet.events == [] and ml.calls("missed_feeds") == 10
    more = await _sales(ml, 10)
    third = await ml.channel.poll("missed_feeds", quiet.cursor)
    assert ml.calls("missed_feeds") == 13
    orders_seen = [r for r in _resources(third.events) if r.startswith("/orders/")]
    assert orders_seen == sorted(f"/orders/{o}" for o in more)
    assert len(third.events) == 20
    assert not set(orders_seen) & {f"/orders/{o}" for o in orders}


async def test_newest_first_history_is_read_from_the_top_until_known(
    ml: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    notifier = ml.sim.notifier
    oldest_first = notifier.missed_feeds

    def newest_first(topic: str | None, offset: int, limit: int) -> list[dict[str, Any]]:
        everything = oldest_first(topic, 0, 1_000_000)[::-1]
        return everything[offset : offset + limit]

    monkeypatch.setattr(notifier, "missed_feeds", newest_first)
    await _sales(ml, 120)
    first = await ml.channel.poll("missed_feeds", None)
    assert len(first.events) == 240 and ml.calls("missed_feeds") == 7
    quiet = await ml.channel.poll("missed_feeds", first.cursor)
    assert quiet.events == [] and ml.calls("missed_feeds") == 10
    more = await _sales(ml, 60)  # more than a page of new messages per topic
    third = await ml.channel.poll("missed_feeds", quiet.cursor)
    assert [r for r in _resources(third.events) if r.startswith("/orders/")] == sorted(f"/orders/{o}" for o in more)
    assert len(third.events) == 120
    assert ml.calls("missed_feeds") == 10 + 2 + 2 + 1  # two pages reach known messages; shipments empty


async def test_pruned_history_shifts_offsets_without_losing_or_repeating(ml: Harness) -> None:
    ml.sim.config.missed_feeds_retention_seconds = 3600
    ml.sim.config.topics = ("orders_v2",)
    await _sales(ml, 60)
    ml.sim.clock.advance(1800)
    await _sales(ml, 60)
    first = await ml.channel.poll("missed_feeds", None)
    assert len(first.events) == 120
    ml.sim.clock.advance(1801)  # the first 60 fall out of retention: every offset moves down by 60
    latest = await _sales(ml, 5)
    before = ml.calls("missed_feeds")
    second = await ml.channel.poll("missed_feeds", first.cursor)
    assert _resources(second.events) == sorted(f"/orders/{o}" for o in latest)
    assert ml.calls("missed_feeds") - before <= 3 + 2  # a short walk back for orders_v2; the rest empty


async def test_restart_skips_history_older_than_the_cursor_window(ml: Harness) -> None:
    ml.sim.config.topics = ("orders_v2",)
    await _sales(ml, 600)
    ml.sim.clock.advance(7200)
    recent = await _sales(ml, 30)
    cursor = ml.sim.clock.now().isoformat()  # a stored cursor: everything but the last hour is done
    restarted = ml.new_channel()
    result = await restarted.poll("missed_feeds", cursor)
    assert _resources(result.events) == sorted(f"/orders/{o}" for o in recent)
    # Galloping over the old pages beats reading all 13 of them; items and shipments are one call each.
    assert ml.calls("missed_feeds") - 2 <= 8


# ----- rate limits: a margin inside the plan --------------------------------------------------------


def test_limiter_plan_keeps_a_margin_inside_the_plan() -> None:
    plan = limiter_plan({"items_get": 25.0, "orders_get": 5.0, "missed_feeds": 1.0, "items_search": 0.5})
    for op, rps in (("items_get", 25.0), ("orders_get", 5.0), ("missed_feeds", 1.0), ("items_search", 0.5)):
        capacity, period = plan[op]
        burst = max(1.0, rps)
        assert 1.0 <= capacity <= max(1.0, burst - 1)  # a spare call of burst whenever there is room
        assert capacity / period <= rps * 0.96  # and a slower refill
    assert plan["items_get"][0] == pytest.approx(22.5)


async def test_bursts_at_the_published_plan_provoke_no_429(ml: Harness) -> None:
    plans = {"items_get": 30.0, "orders_get": 3.0}
    # The server's buckets hold exactly one second of calls (the bench's plan); so would a limiter
    # equal to the plan, which is what provoked 429s whenever a call arrived a little early.
    ml.sim.set_rate_limits({op: (rps, max(1.0, rps)) for op, rps in plans.items()})
    channel = ml.new_channel(rate_limits=plans)
    item = ml.sim.market.seed_item({"title": "Mate", "price": 5, "available_quantity": 10})
    order = ml.sim.market.sale(item.id, None, 1)
    await channel.auth.token()

    def burst(n: int, call: Callable[[], Any]) -> list[Any]:
        return [call() for _ in range(n)]

    started = time.perf_counter()
    await asyncio.gather(
        *burst(75, lambda: channel.client.get("items_get", f"/items/{item.id}")),
        *burst(8, lambda: channel.client.get("orders_get", f"/orders/{order.id}")),
    )
    elapsed = time.perf_counter() - started
    assert ml.sim.rate_limited == {}
    assert ml.calls("items_get") == 75 and ml.calls("orders_get") == 8
    assert elapsed >= 1.8  # the limiters did hold the calls back (about 2.1 s for both bursts)
