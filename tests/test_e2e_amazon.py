"""Amazon through the daemon: a 429 storm at the published usage plans, and ORDER_CHANGE over SQS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from syncd.config import AmazonSettings
from syncd.daemon import Daemon
from syncd.sandbox.amazon import AmazonSimulator, SimConfig
from tests.conftest import make_settings
from tests.fakes import MemoryChannel

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
N = 15


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


async def _start(tmp: Path, sim: AmazonSimulator, **amazon: object) -> tuple[Daemon, MemoryChannel]:
    skus = [f"P{i:02d}" for i in range(N)]
    catalog = "sku,title,location,channel,external_id,variation_id,safety_buffer,cap,share\n" + "".join(
        f"{s},{s},main,amazon,{s}-A,,0,,\n{s},{s},main,mercadolibre,MLM{s},,0,,\n" for s in skus)
    for s in skus:
        sim.market.seed_listing({"sku": f"{s}-A", "quantity": 0, "price": 10})
    settings = make_settings(tmp, max_attempts=10_000, cap=2.0)
    settings.channels.amazon = AmazonSettings(**sim.client_settings(**amazon))  # type: ignore[arg-type]
    ml = MemoryChannel("mercadolibre")
    daemon = Daemon(settings, channels={"mercadolibre": ml})
    await daemon.start()
    assert daemon.service is not None
    await daemon.service.import_catalog(catalog)
    return daemon, ml


@pytest.fixture
async def storm_sim() -> AsyncIterator[AmazonSimulator]:
    # The published plans (patchListingsItem 5 rps, burst 5; getListingsItem 5 rps, burst 10).
    async with AmazonSimulator(SimConfig(consistency_delay=0.0, search_lag=0, notify_delay=0.01)) as sim:
        yield sim


async def test_burst_of_changes_never_exceeds_the_usage_plan_and_every_push_lands(
    tmp_path: Path, storm_sim: AmazonSimulator
) -> None:
    daemon, _ = await _start(tmp_path, storm_sim, orders_poll_seconds=3600, listings_poll_seconds=3600)
    try:
        assert daemon.service is not None
        # A burst: every product counted at once, then counted again, so pushes pile up and coalesce.
        for qty in (7, 9):
            await asyncio.gather(*[daemon.service.count(f"P{i:02d}", "main", qty + i) for i in range(N)])
        listings = storm_sim.market.listings
        async with asyncio.timeout(30):
            while any(listings[f"P{i:02d}-A"].mfn_quantity() != 9 + i for i in range(N)):
                await asyncio.sleep(0.1)
        assert sum(storm_sim.market.counters.throttled.values()) == 0  # not one 429 at the plan
    finally:
        await daemon.stop()


async def test_order_change_arrives_by_sqs_long_polling_without_a_public_url(tmp_path: Path, moto_url: str) -> None:
    sqs = boto3.client("sqs", endpoint_url=moto_url, region_name=REGION, **CREDENTIALS)
    queue_url = str(sqs.create_queue(QueueName="syncd-e2e", Attributes={"VisibilityTimeout": "2"})["QueueUrl"])
    config = SimConfig(consistency_delay=0.0, search_lag=0, notify_delay=0.0, sqs_queue_url=queue_url,
                       sqs_endpoint_url=moto_url, sqs_region=REGION, order_change_to_webhook=False)
    async with AmazonSimulator(config) as sim:
        # Polling is slowed to an hour: only SQS can bring the sale in time.
        daemon, ml = await _start(tmp_path, sim, orders_poll_seconds=3600, listings_poll_seconds=3600,
                                  sqs_queue_url=queue_url, sqs_endpoint_url=moto_url, sqs_region=REGION,
                                  **CREDENTIALS)
        try:
            assert daemon.service is not None
            await daemon.service.count("P00", "main", 10)
            async with asyncio.timeout(15):
                while sim.market.listings["P00-A"].mfn_quantity() != 10:
                    await asyncio.sleep(0.05)
            sim.market.make_sale({"items": [{"sku": "P00-A", "qty": 4}]})
            async with asyncio.timeout(20):
                while ml.qty("MLMP00") != 6:
                    await asyncio.sleep(0.05)
        finally:
            await daemon.stop()
