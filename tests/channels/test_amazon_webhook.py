"""EventBridge webhook deliveries: authentication, parsing, and the simulator's at-least-once delivery."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from syncd.capture.events import Event, ListingObservation, Notification, OrderUpsert
from syncd.channels.amazon import AmazonChannel
from syncd.config import AmazonSettings
from syncd.sandbox.amazon import AmazonSimulator, SimConfig
from syncd.sandbox.amazon_notify import Faults, eventbridge_event, mfn_quantity_change, order_change

SECRET = "s3cret-webhook-value"
NOW = datetime(2026, 3, 1, tzinfo=UTC)


class Receiver:
    """syncd's side of POST /webhooks/amazon, as the daemon routes it to the adapter."""

    def __init__(self, amazon: AmazonChannel, fail_first: int = 0) -> None:
        self.amazon = amazon
        self.fail_first = fail_first
        self.requests = 0
        self.statuses: list[int] = []
        self.events: list[Event] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        if self.requests <= self.fail_first:
            status = 503
        elif not self.amazon.authenticate(None, dict(request.headers), body):
            status = 401
        else:
            try:
                self.events.extend(self.amazon.parse(dict(request.headers), body, datetime.now(UTC)))
                status = 200
            except ValueError:
                status = 400
        self.statuses.append(status)
        return web.Response(status=status)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def sim() -> AsyncIterator[AmazonSimulator]:
    config = SimConfig(
        consistency_delay=0.0,
        search_lag=0.0,
        notify_delay=0.0,
        notify_secret=SECRET,
        retry_base=0.01,
        retry_cap=0.05,
        max_attempts=4,
    )
    async with AmazonSimulator(config) as running:
        running.market.seed_listing({"sku": "MUG", "quantity": 20, "price": "9.90"})
        yield running


@pytest.fixture
def amazon(sim: AmazonSimulator, session: aiohttp.ClientSession) -> AmazonChannel:
    return AmazonChannel(AmazonSettings(**sim.client_settings(webhook_secret=SECRET)), session)


async def serve(sim: AmazonSimulator, receiver: Receiver) -> TestServer:
    app = web.Application()
    app.router.add_post("/webhooks/amazon", receiver.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    sim.market.config.notify_url = str(server.make_url("/webhooks/amazon"))
    return server


def delivery(sim: AmazonSimulator, note: dict[str, Any]) -> bytes:
    return json.dumps(eventbridge_event(sim.market.config, note)).encode()


def test_secret_header_is_compared_and_required(amazon) -> None:
    assert amazon.authenticate(None, {"X-Syncd-Webhook-Secret": SECRET}, b"{}")
    assert not amazon.authenticate(None, {"x-syncd-webhook-secret": SECRET + "x"}, b"{}")
    assert not amazon.authenticate(None, {"x-api-key": SECRET}, b"{}")
    assert not amazon.authenticate(SECRET, {}, b"{}")  # a path secret is not how Amazon authenticates


def test_no_configured_secret_refuses_every_delivery(sim, session) -> None:
    unconfigured = AmazonChannel(AmazonSettings(**sim.client_settings(webhook_secret="")), session)
    assert not unconfigured.authenticate(None, {"x-syncd-webhook-secret": ""}, b"{}")


def test_quantity_change_delivery_parses_to_an_observation(sim, amazon) -> None:
    note = mfn_quantity_change(sim.market.config, "MUG", 11, NOW)
    [event] = amazon.parse({}, delivery(sim, note), NOW)
    assert event.dedupe_key == f"amazon:notif:{note['NotificationMetadata']['NotificationId']}"
    assert isinstance(event.body, ListingObservation)
    assert (event.body.external_id, event.body.quantity, event.body.at) == ("MUG", 11, NOW)
    assert event.raw is not None and event.raw["detail-type"] == "LISTINGS_ITEM_MFN_QUANTITY_CHANGE"


def test_order_change_from_eventbridge_or_a_pipe_gives_the_same_pointer(sim, amazon) -> None:
    order = sim.market.make_sale({"items": [{"sku": "MUG", "qty": 1}]})
    note = order_change(sim.market.config, order, "test", NOW)
    [direct] = amazon.parse({}, delivery(sim, note), NOW)
    sqs_record = {"messageId": "m-1", "eventSource": "aws:sqs", "body": json.dumps(note)}
    [piped] = amazon.parse({}, json.dumps([sqs_record]).encode(), NOW)
    assert direct.dedupe_key == piped.dedupe_key
    assert isinstance(piped.body, Notification)
    assert (piped.body.topic, piped.body.resource) == ("ORDER_CHANGE", order.order_id)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[]", "empty batch"),
        (b'"text"', "not a JSON object"),
        (b'{"version": "0"}', "neither an EventBridge event"),
        (b'{"detail": []}', "not an EventBridge event"),
        (b'{"detail": {"NotificationType": "ORDER_CHANGE"}}', "malformed SP-API notification"),
        (b'{"messageId": "m", "body": "{oops"}', "SQS record body is not JSON"),
    ],
)
def test_malformed_deliveries_are_rejected_with_a_reason(amazon, body: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        amazon.parse({}, body, NOW)


def test_delivery_for_another_seller_is_rejected(sim, amazon) -> None:
    note = mfn_quantity_change(sim.market.config, "MUG", 1, NOW)
    note["Payload"]["SellerId"] = "AOTHERSELLER"
    with pytest.raises(ValueError, match="another selling partner"):
        amazon.parse({}, delivery(sim, note), NOW)


async def test_sale_is_delivered_and_its_pointer_resolves_to_the_order(sim, amazon) -> None:
    receiver = Receiver(amazon)
    server = await serve(sim, receiver)
    try:
        order = sim.market.make_sale({"items": [{"sku": "MUG", "qty": 2}]})
        async with asyncio.timeout(5):
            await sim.market.notifier.drain()
    finally:
        await server.close()
    kinds = {type(e.body) for e in receiver.events}
    assert kinds == {Notification, ListingObservation}
    [pointer] = [e.body for e in receiver.events if isinstance(e.body, Notification)]
    [fetched] = await amazon.fetch(pointer.topic, pointer.resource)
    assert isinstance(fetched.body, OrderUpsert) and fetched.body.order_id == order.order_id
    [seen] = [e.body for e in receiver.events if isinstance(e.body, ListingObservation)]
    assert seen.quantity == 18


async def test_duplicates_and_reordering_collapse_on_notification_id(sim, amazon) -> None:
    receiver = Receiver(amazon)
    server = await serve(sim, receiver)
    sim.market.notifier.set_faults(Faults(duplicate=0.5, reorder_delay=0.2, seed=7))
    published = []
    try:
        for qty in range(10):
            note = mfn_quantity_change(sim.market.config, "MUG", qty, NOW)
            published.append(f"amazon:notif:{note['NotificationMetadata']['NotificationId']}")
            sim.market.notifier.publish(note)
        async with asyncio.timeout(5):
            await sim.market.notifier.drain()
    finally:
        await server.close()
    arrived = [e.dedupe_key for e in receiver.events]
    duplicated = sim.market.counters.notifications["duplicated"]
    assert duplicated > 0 and len(arrived) == 10 + duplicated
    assert set(arrived) == set(published)
    first_arrivals = list(dict.fromkeys(arrived))
    assert first_arrivals != published  # out of order, yet nothing missing


async def test_loss_drops_deliveries_silently_like_a_lost_event(sim, amazon) -> None:
    receiver = Receiver(amazon)
    server = await serve(sim, receiver)
    sim.market.notifier.set_faults(Faults(loss=1.0, seed=1))
    try:
        sim.market.make_sale({"items": [{"sku": "MUG", "qty": 1}]})
        async with asyncio.timeout(5):
            await sim.market.notifier.drain()
    finally:
        await server.close()
    assert receiver.requests == 0
    assert sim.market.counters.notifications["dropped"] == 2  # ORDER_CHANGE and the quantity change


async def test_server_errors_are_retried_until_delivered(sim, amazon) -> None:
    receiver = Receiver(amazon, fail_first=2)
    server = await serve(sim, receiver)
    try:
        sim.market.notifier.publish(mfn_quantity_change(sim.market.config, "MUG", 3, NOW))
        async with asyncio.timeout(5):
            await sim.market.notifier.drain()
    finally:
        await server.close()
    assert receiver.statuses == [503, 503, 200]
    assert sim.market.counters.notifications["retried"] == 2
    assert len(receiver.events) == 1


async def test_wrong_secret_is_retried_then_given_up_and_bad_bodies_are_not_retried(sim, amazon) -> None:
    receiver = Receiver(amazon)
    server = await serve(sim, receiver)
    try:
        sim.market.config.notify_secret = "stale-secret"
        sim.market.notifier.publish(mfn_quantity_change(sim.market.config, "MUG", 3, NOW))
        async with asyncio.timeout(5):
            await sim.market.notifier.drain()
        assert receiver.statuses == [401] * 4  # EventBridge retries 401 (OAuth refresh), then stops
        sim.market.config.notify_secret = SECRET
        note = mfn_quantity_change(sim.market.config, "MUG", 3, NOW)
        note["Payload"]["Quantity"] = -1
        sim.market.notifier.publish(note)
        async with asyncio.timeout(5):
            await sim.market.notifier.drain()
    finally:
        await server.close()
    assert receiver.statuses[-1] == 400 and len(receiver.statuses) == 5
    counters = sim.market.counters.notifications
    assert (counters["failed"], counters["rejected"]) == (1, 1)
