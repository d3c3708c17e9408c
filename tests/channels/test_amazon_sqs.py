"""ORDER_CHANGE through SQS: the simulator publishes, the consumer long-polls moto's server mode."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import aiohttp
import boto3
import pytest
from moto.server import ThreadedMotoServer

from syncd.capture.events import Notification, OrderUpsert
from syncd.channels.amazon import AmazonChannel, SqsNotificationConsumer
from syncd.channels.base import Permanent
from syncd.config import AmazonSettings
from syncd.domain.models import OrderState
from syncd.sandbox.amazon import AmazonSimulator, SimConfig

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def queue_url(moto_url: str, request: pytest.FixtureRequest) -> str:
    sqs = boto3.client("sqs", endpoint_url=moto_url, region_name=REGION, **CREDENTIALS)
    name = request.node.name[:70]
    return str(sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "1"})["QueueUrl"])


@pytest.fixture
async def sim(moto_url: str, queue_url: str) -> AsyncIterator[AmazonSimulator]:
    config = SimConfig(
        consistency_delay=0.0,
        search_lag=0.0,
        notify_delay=0.0,
        sqs_queue_url=queue_url,
        sqs_endpoint_url=moto_url,
        sqs_region=REGION,
    )
    async with AmazonSimulator(config) as running:
        running.market.seed_listing({"sku": "MUG", "quantity": 20, "price": "9.90"})
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def settings(sim: AmazonSimulator, moto_url: str, queue_url: str) -> AmazonSettings:
    return AmazonSettings(
        **sim.client_settings(
            sqs_queue_url=queue_url,
            sqs_endpoint_url=moto_url,
            sqs_region=REGION,
            **CREDENTIALS,
        )
    )


async def receive_all(consumer: SqsNotificationConsumer, expected: int) -> list:
    received: list = []
    async with asyncio.timeout(10):
        while len(received) < expected:
            received.extend(await consumer.receive(wait_seconds=1))
    return received


async def test_order_change_is_received_resolved_and_deleted(sim, session, moto_url, queue_url) -> None:
    config = settings(sim, moto_url, queue_url)
    order = sim.market.make_sale({"items": [{"sku": "MUG", "qty": 2}], "status": "PENDING"})
    sim.market.change_order(order.order_id, "pay")
    async with asyncio.timeout(10):
        await sim.market.notifier.drain()
    assert sim.market.counters.notifications["sqs_sent"] == 2
    async with SqsNotificationConsumer(config) as consumer:
        messages = await receive_all(consumer, 2)
        pointers = [e.body for events, _ in messages for e in events]
        assert all(isinstance(p, Notification) and p.resource == order.order_id for p in pointers)
        amazon = AmazonChannel(config, session)
        [event] = await amazon.fetch("ORDER_CHANGE", order.order_id)
        assert isinstance(event.body, OrderUpsert) and event.body.state is OrderState.PAID
        for _, handle in messages:
            await consumer.delete(handle)
        await asyncio.sleep(1.1)  # past the visibility timeout: deleted messages do not come back
        assert await consumer.receive(wait_seconds=0) == []


async def test_undeleted_message_comes_back_with_the_same_dedupe_key(sim, moto_url, queue_url) -> None:
    sim.market.make_sale({"items": [{"sku": "MUG", "qty": 1}]})
    async with asyncio.timeout(10):
        await sim.market.notifier.drain()
    async with SqsNotificationConsumer(settings(sim, moto_url, queue_url)) as consumer:
        [(first, _)] = await receive_all(consumer, 1)
        await asyncio.sleep(1.1)
        [(again, handle)] = await receive_all(consumer, 1)
        assert [e.dedupe_key for e in again] == [e.dedupe_key for e in first]
        await consumer.delete(handle)


async def test_malformed_message_is_left_for_the_dead_letter_queue(sim, moto_url, queue_url) -> None:
    sqs = boto3.client("sqs", endpoint_url=moto_url, region_name=REGION, **CREDENTIALS)
    sqs.send_message(QueueUrl=queue_url, MessageBody="not json")
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"NotificationType": "ORDER_CHANGE"}))
    async with SqsNotificationConsumer(settings(sim, moto_url, queue_url)) as consumer:
        assert await consumer.receive(wait_seconds=1) == []
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "2"


async def test_missing_queue_is_permanent(sim, moto_url) -> None:
    missing = f"{moto_url}/123456789012/no-such-queue"
    async with SqsNotificationConsumer(settings(sim, moto_url, missing)) as consumer:
        with pytest.raises(Permanent, match=r"NonExistentQueue|QueueDoesNotExist"):
            await consumer.receive(wait_seconds=0)
    with pytest.raises(Permanent, match="sqs_queue_url"):
        SqsNotificationConsumer(AmazonSettings())


async def test_run_loop_submits_then_deletes_until_stopped(sim, moto_url, queue_url) -> None:
    orders = [sim.market.make_sale({"items": [{"sku": "MUG", "qty": 1}]}).order_id for _ in range(3)]
    async with asyncio.timeout(10):
        await sim.market.notifier.drain()
    stored: list = []
    stopping = asyncio.Event()

    async def submit(events: list) -> None:
        stored.extend(events)
        if len(stored) >= 3:
            stopping.set()

    async with SqsNotificationConsumer(settings(sim, moto_url, queue_url)) as consumer:
        async with asyncio.timeout(10):
            await consumer.run(submit, stopping, wait_seconds=1)
        await asyncio.sleep(1.1)  # past the visibility timeout
        assert await consumer.receive(wait_seconds=0) == []
    assert sorted(e.body.resource for e in stored) == sorted(orders)
