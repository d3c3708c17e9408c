"""Usage plans: the simulator's token buckets and the adapter's limiters agree, over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from syncd.channels.amazon import AmazonChannel
from syncd.channels.base import ListingRef, RateLimited
from syncd.config import AmazonSettings
from syncd.sandbox.amazon import AmazonSimulator, SimConfig

# getListingsItem keeps its published burst of 10; the rate is raised on both sides so the
# test takes about a second instead of six.
RATE = 25.0
BURST = 10
CALLS = 40


@pytest.fixture
async def sim() -> AsyncIterator[AmazonSimulator]:
    config = SimConfig()
    config.plans["getListingsItem"] = (RATE, BURST)
    async with AmazonSimulator(config) as running:
        for n in range(CALLS):
            running.market.seed_listing({"sku": f"SKU-{n}", "quantity": n, "price": "5.00"})
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def channel(sim: AmazonSimulator, session: aiohttp.ClientSession) -> AmazonChannel:
    settings = AmazonSettings(**sim.client_settings(rate_limits={"getListingsItem": RATE}))
    return AmazonChannel(settings, session)


async def test_burst_at_the_plan_is_never_throttled(sim, session) -> None:
    amazon = channel(sim, session)
    refs = [ListingRef(f"SKU-{n}") for n in range(CALLS)]
    seen = await amazon.read_listings(refs)
    assert [o.quantity for o in seen] == list(range(CALLS))
    assert sim.market.counters.calls["getListingsItem"] == CALLS
    assert sim.market.counters.throttled["getListingsItem"] == 0


async def test_same_burst_without_the_limiter_is_throttled_with_a_retry_hint(sim, session) -> None:
    amazon = channel(sim, session)
    amazon.client.http.limiters.clear()
    await amazon.client.auth.access_token()
    results = await asyncio.gather(
        *(amazon.read_listings([ListingRef(f"SKU-{n}")]) for n in range(CALLS)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert sim.market.counters.throttled["getListingsItem"] == len(refused) > 0
    assert CALLS - len(refused) >= BURST
    # Amazon sends no Retry-After; the hint is the time one token of the plan takes to refill.
    assert refused[0].retry_after == pytest.approx(1 / RATE)


async def test_throttled_and_served_responses_carry_amazons_headers(sim, session) -> None:
    amazon = channel(sim, session)
    token = await amazon.client.auth.access_token()
    seller = sim.market.config.seller_id
    url = f"{sim.url}/listings/2021-08-01/items/{seller}/SKU-1?marketplaceIds=ATVPDKIKX0DER"
    statuses: list[int] = []
    for _ in range(BURST + 2):
        async with session.get(url, headers={"x-amz-access-token": token}) as resp:
            statuses.append(resp.status)
            assert "x-amzn-RequestId" in resp.headers
            assert "Retry-After" not in resp.headers
            if resp.status == 200:
                assert resp.headers["x-amzn-RateLimit-Limit"] == f"{RATE:g}"
            else:
                assert "x-amzn-RateLimit-Limit" not in resp.headers
                body = await resp.json()
    assert statuses.count(429) >= 1
    assert body == {
        "errors": [
            {
                "code": "QuotaExceeded",
                "message": "You exceeded your quota for the requested resource.",
                "details": "",
            }
        ]
    }
