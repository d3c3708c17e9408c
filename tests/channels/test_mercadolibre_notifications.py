"""MercadoLibre notifications end to end: simulator → local receiver → adapter, retries, loss, missed_feeds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from syncd.capture.events import Event, Notification, OrderUpsert
from syncd.channels.mercadolibre import MercadoLibreChannel
from syncd.config import MercadoLibreSettings
from syncd.domain.models import OrderState
from syncd.sandbox.common import SimServer
from syncd.sandbox.mercadolibre import MercadoLibreSim, create_app
from syncd.sandbox.mercadolibre_core import OPERATIONS, SimConfig
from syncd.sandbox.mercadolibre_notify import DeliveryFaults
from tests.fakes import MemoryTokens

SECRET = "hook-path-secret"



@dataclass
class Receiver:
    """The daemon's public webhook route, reduced to what the adapter contract needs."""

    channel: MercadoLibreChannel | None = None
    bodies: list[dict[str, object]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    # Answers to give, in order, before answering 200 (status, or a delay in seconds as a float).
    script: list[int | float] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        try:
            return await self._handle(request)
        finally:
            self.arrived.set()  # wakes `Harness.until`

    async def _handle(self, request: web.Request) -> web.Response:
        assert self.channel is not None
        body = await request.read()
        if not self.channel.authenticate(request.match_info["secret"], dict(request.headers), body):
            return web.Response(status=401)
        try:
            self.bodies.append(json.loads(body))
        except ValueError:
            return web.Response(status=400)
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, float):
                await asyncio.sleep(step)
            else:
                return web.Response(status=step)
        try:
            self.events.extend(self.channel.parse(dict(request.headers), body, datetime.now(UTC)))
        except ValueError:
            return web.Response(status=400)
        return web.Response(text="ok")


@dataclass
class Harness:
    sim: MercadoLibreSim
    channel: MercadoLibreChannel
    receiver: Receiver
    hook_url: str

    async def until(self, predicate: Callable[[], object], within: float = 3.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self.receiver.arrived.clear()
                await self.receiver.arrived.wait()


@pytest.fixture
async def ml() -> AsyncIterator[Harness]:
    receiver = Receiver()
    hook_app = web.Application()
    hook_app.router.add_post("/webhooks/mercadolibre/{secret}", receiver.handle)
    hook_server = SimServer(hook_app)
    await hook_server.start()
    hook_url = f"{hook_server.url}/webhooks/mercadolibre/{SECRET}"
    config = SimConfig(
        seed=3,
        notify_url=hook_url,
        topics=("orders_v2", "items", "shipments"),
        retry_delays=(0.05, 0.05, 0.05),
        rate_limits=dict.fromkeys(OPERATIONS, (1000.0, 1000.0)),
    )
    sim = MercadoLibreSim(config)
    server = SimServer(create_app(sim))
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
        webhook_secret=SecretStr(SECRET),
        site_id=sim.config.site_id,
        rate_limits=dict.fromkeys(OPERATIONS, 1000.0),
    )
    async with aiohttp.ClientSession() as session:
        channel = MercadoLibreChannel(settings, session, MemoryTokens())
        receiver.channel = channel
        yield Harness(sim, channel, receiver, hook_url)
        await sim.notifier.close()
    await server.stop()
    await hook_server.stop()


def _notes(events: list[Event], topic: str) -> list[Notification]:
    return [e.body for e in events if isinstance(e.body, Notification) and e.body.topic == topic]


async def test_sale_notifies_the_receiver_and_fetch_resolves_the_order(ml: Harness) -> None:
    item = ml.sim.market.seed_item({"title": "Mate", "price": 40, "variations": [{"available_quantity": 3}]})
    variation = item.variations[0].id
    order = ml.sim.market.sale(item.id, variation, 2)
    await ml.until(lambda: _notes(ml.receiver.events, "orders_v2") and _notes(ml.receiver.events, "items"))
    [note] = _notes(ml.receiver.events, "orders_v2")
    assert note.resource == f"/orders/{order.id}"
    [raw] = [b for b in ml.receiver.bodies if b["topic"] == "orders_v2"]
    assert set(raw) == {"resource", "user_id", "topic", "application_id", "attempts", "sent", "received"}
    assert "_id" in next(b for b in ml.receiver.bodies if b["topic"] == "items")
    [event] = await ml.channel.fetch(note.topic, note.resource)
    assert isinstance(event.body, OrderUpsert)
    assert event.body.state is OrderState.PAID
    line = event.body.lines[0]
    assert (line.external_id, line.variation_id, line.qty) == (item.id, str(variation), 2)
    [item_note] = _notes(ml.receiver.events, "items")
    observations = await ml.channel.fetch(item_note.topic, item_note.resource)
    assert [e.body.quantity for e in observations] == [1]  # type: ignore[union-attr]


async def test_failed_delivery_is_retried_with_attempts_and_sent_moving_received_fixed(ml: Harness) -> None:
    ml.sim.config.topics = ("orders_v2",)
    ml.sim.config.notify_timeout_seconds = 0.2
    ml.receiver.script = [500, 0.4]  # an error, then an answer too slow to count
    item = ml.sim.market.seed_item({"title": "Yerba", "price": 5, "available_quantity": 2})
    ml.sim.market.sale(item.id, None, 1)
    await ml.until(lambda: len(ml.receiver.events) == 1)
    await asyncio.sleep(0.3)  # the slow answer's own event arrives after the retry's
    bodies = ml.receiver.bodies
    assert [b["attempts"] for b in bodies] == [1, 2, 3]
    assert len({b["received"] for b in bodies}) == 1
    assert str(bodies[0]["sent"]) <= str(bodies[1]["sent"]) <= str(bodies[2]["sent"])
    outcomes = [entry["outcome"] for entry in ml.sim.notifier.log]
    assert outcomes == ["failed", "failed", "delivered"]
    same = [ml.channel.parse({}, json.dumps(b).encode(), datetime.now(UTC))[0].dedupe_key for b in bodies]
    assert len(set(same)) == 1


async def test_duplicates_share_a_key_and_a_later_change_gets_a_new_one(ml: Harness) -> None:
    ml.sim.config.topics = ("items",)
    ml.sim.notifier.set_faults(DeliveryFaults(duplicate_probability=1.0, seed=1))
    item = ml.sim.market.seed_item({"title": "Termo", "price": 5, "available_quantity": 2})
    ml.sim.market.update_item(item.id, {"available_quantity": 5})
    await ml.until(lambda: len(ml.receiver.events) == 2)
    ml.sim.clock.advance(0.01)
    ml.sim.market.update_item(item.id, {"available_quantity": 6})
    await ml.until(lambda: len(ml.receiver.events) == 4)
    keys = [e.dedupe_key for e in ml.receiver.events]
    assert keys[0] == keys[1] and keys[2] == keys[3] and keys[0] != keys[2]


async def test_out_of_order_deliveries_still_resolve_to_the_latest_state(ml: Harness) -> None:
    ml.sim.config.topics = ("orders_v2",)
    ml.sim.notifier.set_faults(DeliveryFaults(reorder_delay_seconds=0.2, seed=4))
    item = ml.sim.market.seed_item({"title": "Bombilla", "price": 5, "available_quantity": 2})
    order = ml.sim.market.sale(item.id, None, 1, status="payment_required")
    ml.sim.clock.advance(1)
    ml.sim.market.order_action(order.id, "pay")
    await ml.until(lambda: len(ml.receiver.events) == 2)
    first, second = (str(b["received"]) for b in ml.receiver.bodies)
    assert first > second  # the payment's notification overtook the creation's (seeded)
    states = []
    for note in _notes(ml.receiver.events, "orders_v2"):
        [event] = await ml.channel.fetch(note.topic, note.resource)
        assert isinstance(event.body, OrderUpsert)
        states.append(event.body.state)
    assert states == [OrderState.PAID, OrderState.PAID]


async def test_lost_notification_is_recovered_through_missed_feeds(ml: Harness) -> None:
    ml.sim.config.topics = ("orders_v2", "items")
    item = ml.sim.market.seed_item({"title": "Mate", "price": 5, "available_quantity": 5})
    delivered = ml.sim.market.sale(item.id, None, 1)
    await ml.until(lambda: len(ml.receiver.events) == 2)
    ml.sim.notifier.set_faults(DeliveryFaults(loss_probability=1.0, seed=2))
    ml.sim.clock.advance(0.01)
    lost = ml.sim.market.sale(item.id, None, 1)
    await ml.sim.notifier.drain()
    assert len(ml.receiver.events) == 2  # nothing of the second sale got through
    result = await ml.channel.poll("missed_feeds", None)
    resources = sorted((n.topic, n.resource) for n in (e.body for e in result.events) if isinstance(n, Notification))
    assert resources == [("items", f"/items/{item.id}"), ("orders_v2", f"/orders/{lost.id}")]
    assert f"/orders/{delivered.id}" not in {r for _, r in resources}
    assert ml.sim.calls["missed_feeds"] == 3  # orders_v2, shipments, items (with site_id)
    again = await ml.channel.poll("missed_feeds", result.cursor)
    assert again.events == []  # already reported, and nothing new: one call per topic
    assert ml.sim.calls["missed_feeds"] == 6
    # A restarted process re-reads the overlap window and reports the same keys again.
    auth = ml.channel.auth
    restarted = MercadoLibreChannel(ml.channel.settings, auth.session, auth.tokens)
    replay = await restarted.poll("missed_feeds", result.cursor)
    assert {e.dedupe_key for e in replay.events} == {e.dedupe_key for e in result.events}
    # The key matches what the webhook would have produced for the same delivery.
    record = next(r for r in ml.sim.notifier.records if r.body["resource"] == f"/orders/{lost.id}")
    direct = ml.channel.parse({}, json.dumps(record.body).encode(), datetime.now(UTC))[0].dedupe_key
    assert direct in {e.dedupe_key for e in result.events}
    [event] = await ml.channel.fetch("orders_v2", f"/orders/{lost.id}")
    assert isinstance(event.body, OrderUpsert) and event.body.order_id == str(lost.id)


async def test_missed_feeds_wire_format(ml: Harness) -> None:
    ml.sim.config.topics = ("items",)
    ml.sim.config.retry_delays = ()
    ml.receiver.script = [503]
    item = ml.sim.market.seed_item({"title": "Mate", "price": 5, "available_quantity": 5})
    ml.sim.market.update_item(item.id, {"available_quantity": 4})
    await ml.sim.notifier.drain()
    token = await ml.channel.auth.token()
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{ml.channel.settings.api_base}/missed_feeds"
    app_id = str(ml.sim.config.application_id)
    async with aiohttp.ClientSession() as http:
        async with http.get(base, params={"app_id": app_id, "topic": "items"}, headers=headers) as resp:
            assert resp.status == 400  # site_id is required with topic=items
        params = {"app_id": app_id, "topic": "items", "site_id": "MLM"}
        async with http.get(base, params=params, headers=headers) as resp:
            body = await resp.json()
    assert list(body) == ["messages"]
    [message] = body["messages"]
    assert len(message["_id"]) == 24
    assert message["response"]["http_code"] == 503
    data = json.loads(message["request"]["data"])
    assert data["resource"] == message["resource"] == f"/items/{item.id}"
    assert data["received"] == message["received"] and data["attempts"] == 1
    assert len((await ml.channel.poll("missed_feeds", None)).events) == 1
    ml.sim.clock.advance(2 * 86400 + 1)  # past the two days of retention (and the access token's life)
    assert (await ml.channel.poll("missed_feeds", None)).events == []


async def test_webhook_with_wrong_secret_or_foreign_account_is_refused(ml: Harness) -> None:
    item = ml.sim.market.seed_item({"title": "Mate", "price": 5, "available_quantity": 5})
    body = {
        "resource": f"/items/{item.id}",
        "user_id": ml.sim.config.user_id,
        "topic": "items",
        "application_id": ml.sim.config.application_id,
        "attempts": 1,
        "sent": "2026-10-30T16:19:20.129Z",
        "received": "2026-10-30T16:19:20.106Z",
    }
    wrong_path = ml.hook_url.rsplit("/", 1)[0] + "/not-the-secret"
    async with aiohttp.ClientSession() as http:
        async with http.post(wrong_path, json=body) as resp:
            assert resp.status == 401
        async with http.post(ml.hook_url, json={**body, "user_id": 1}) as resp:
            assert resp.status == 400
        async with http.post(ml.hook_url, data=b"{not json") as resp:
            assert resp.status == 400
        async with http.post(ml.hook_url, json=body) as resp:
            assert resp.status == 200
    assert len(ml.receiver.events) == 1
