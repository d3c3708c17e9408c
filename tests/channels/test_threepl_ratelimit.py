"""ShipBob's sliding window: the adapter's limiter stays under it; without it the 3PL answers 429."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from pydantic import SecretStr

from syncd.channels.base import RateLimited
from syncd.channels.threepl.client import ThreePLClient, window_safe_limiter
from syncd.config import ThreePLSettings
from syncd.sandbox.common import SimServer
from syncd.sandbox.threepl import start
from syncd.sandbox.threepl_state import ThreePLState

TOKEN = "pat-rate-test"
# A short window keeps the test fast; the shape (limit per sliding window) is ShipBob's 150/60 s.
LIMIT, WINDOW = 60, 1.0
CALLS = 200


def settings(url: str, per_second: float) -> ThreePLSettings:
    return ThreePLSettings(enabled=True, api_base=url, api_token=SecretStr(TOKEN), rate_limits={"api": per_second})


@pytest.fixture
async def sim() -> AsyncIterator[tuple[ThreePLState, SimServer]]:
    state = ThreePLState(TOKEN, rate_limit=LIMIT, rate_window=WINDOW)
    state.seed([{"sku": "A", "on_hand": 3}])
    server = await start(state)
    yield state, server
    await server.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_burst_through_the_limiter_gets_no_429(
    sim: tuple[ThreePLState, SimServer], session: aiohttp.ClientSession
) -> None:
    state, server = sim
    client = ThreePLClient(settings(server.url, LIMIT / WINDOW), session, rate_window_seconds=WINDOW)
    inventory_id = min(state.items)
    started = time.monotonic()
    levels = await asyncio.gather(*(client.inventory_level(inventory_id) for _ in range(CALLS)))
    elapsed = time.monotonic() - started
    assert all(level.total_on_hand_quantity == 3 for level in levels)
    assert state.counters["429"] == 0
    assert client.http.stats.rate_limited["inventory-level-one"] == 0
    # 200 calls at ≤60 per second cannot finish in under ~2.3 s; the limiter really paced them.
    assert elapsed > (CALLS - LIMIT) / LIMIT


async def test_burst_without_a_limiter_gets_429_with_x_retry_after(
    sim: tuple[ThreePLState, SimServer], session: aiohttp.ClientSession
) -> None:
    state, server = sim
    url = f"{server.url}/2026-07/inventory-level/{min(state.items)}"

    async def call() -> tuple[int, dict[str, str], object]:
        async with session.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            return resp.status, dict(resp.headers), await resp.json(content_type=None)

    results = await asyncio.gather(*(call() for _ in range(CALLS)))
    limited = [r for r in results if r[0] == 429]
    assert sum(1 for r in results if r[0] == 200) == LIMIT
    assert len(limited) == CALLS - LIMIT == state.counters["429"]
    _status, headers, body = limited[0]
    assert int(headers["x-retry-after"]) >= 1
    assert headers["x-remaining-calls"] == "0"
    seconds = headers["x-retry-after"]
    assert body == {"statusCode": 429, "message": f"Rate limit is exceeded. Try again in {seconds} seconds."}


async def test_after_a_429_the_client_waits_out_x_retry_after_without_calling(
    session: aiohttp.ClientSession,
) -> None:
    state = ThreePLState(TOKEN, rate_limit=2, rate_window=30.0)
    state.seed([{"sku": "A", "on_hand": 1}])
    server = await start(state)
    try:
        client = ThreePLClient(settings(server.url, 1000.0), session)
        inventory_id = min(state.items)
        await client.inventory_level(inventory_id)
        await client.inventory_level(inventory_id)
        with pytest.raises(RateLimited) as first:
            await client.inventory_level(inventory_id)
        assert first.value.retry_after is not None and 1 <= first.value.retry_after <= 30
        calls = state.counters["calls:inventory-level-one"]
        with pytest.raises(RateLimited) as second:
            await client.inventory_level(inventory_id)
        assert state.counters["calls:inventory-level-one"] == calls  # refused locally, not sent
        assert second.value.retry_after is not None and 0 < second.value.retry_after <= first.value.retry_after
    finally:
        await server.stop()


@pytest.mark.parametrize(("limit", "window"), [(150, 60.0), (60, 1.0), (15, 1.0), (2, 30.0)])
def test_window_safe_limiter_never_admits_more_than_the_window_allows(limit: int, window: float) -> None:
    limiter = window_safe_limiter(limit, window)
    burst = limiter.max_rate
    drain = limiter.max_rate / limiter.time_period
    assert burst >= 1
    assert burst + drain * window <= limit


async def test_default_limit_is_shipbobs_150_per_minute(session: aiohttp.ClientSession) -> None:
    client = ThreePLClient(ThreePLSettings(api_base="http://127.0.0.1:1", api_token=SecretStr(TOKEN)), session)
    assert client.window_limit == pytest.approx(150)
    assert client.limiter.max_rate == 15  # a tenth of the window may go at once, the rest drains
