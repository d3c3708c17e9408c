"""LWA token handling between the Amazon adapter and the simulator, over loopback HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from syncd.channels.amazon import AmazonChannel
from syncd.channels.base import ListingRef, Permanent, TokenRecord
from syncd.config import AmazonSettings
from syncd.sandbox.amazon import AmazonSimulator, SimConfig


class Clock:
    """An adapter clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class MemoryTokens:
    """A TokenStore in memory."""

    def __init__(self) -> None:
        self.records: dict[str, TokenRecord] = {}
        self.saves = 0

    async def load(self, channel: str) -> TokenRecord | None:
        return self.records.get(channel)

    async def save(self, channel: str, record: TokenRecord) -> None:
        self.saves += 1
        self.records[channel] = record


@pytest.fixture
async def sim() -> AsyncIterator[AmazonSimulator]:
    async with AmazonSimulator(SimConfig(consistency_delay=0.0, search_lag=0.0)) as running:
        running.market.seed_listing({"sku": "MUG", "quantity": 3, "price": "9.90"})
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def channel(
    sim: AmazonSimulator,
    session: aiohttp.ClientSession,
    clock: Clock | None = None,
    tokens: MemoryTokens | None = None,
    **overrides: Any,
) -> AmazonChannel:
    settings = AmazonSettings(**sim.client_settings(**overrides))
    return AmazonChannel(settings, session, tokens, clock=clock or Clock())


async def test_first_call_refreshes_once_and_later_calls_reuse_the_token(sim, session) -> None:
    amazon = channel(sim, session)
    for _ in range(3):
        await amazon.read_listings([ListingRef("MUG")])
    assert sim.market.counters.lwa["refresh_token"] == 1
    assert sim.market.counters.calls["getListingsItem"] == 3


async def test_token_expiring_mid_run_is_refreshed_once_and_the_call_retried(sim, session) -> None:
    amazon = channel(sim, session)
    await amazon.read_listings([ListingRef("MUG")])
    sim.market.tokens.expire_all()  # Amazon now refuses the token the adapter still holds
    [seen] = await amazon.read_listings([ListingRef("MUG")])
    assert seen.quantity == 3
    counters = sim.market.counters
    assert counters.statuses["403"] == 1
    assert counters.lwa["refresh_token"] == 2
    assert counters.calls["getListingsItem"] == 3  # ok, refused, retried


async def test_token_is_refreshed_before_it_expires_without_a_refusal(sim, session) -> None:
    clock = Clock()
    amazon = channel(sim, session, clock)
    await amazon.read_listings([ListingRef("MUG")])
    clock.now += timedelta(seconds=3600 - 60)  # inside the refresh margin
    await amazon.read_listings([ListingRef("MUG")])
    assert sim.market.counters.lwa["refresh_token"] == 2
    assert sim.market.counters.statuses["403"] == 0


async def test_expiry_on_the_simulator_clock_is_refused_with_amazons_403(sim, session) -> None:
    amazon = channel(sim, session)
    token = await amazon.client.auth.access_token()
    sim.market.clock.advance(3601)
    url = (
        f"{sim.url}/listings/2021-08-01/items/{sim.market.config.seller_id}/MUG?marketplaceIds=ATVPDKIKX0DER"
    )
    async with session.get(url, headers={"x-amz-access-token": token}) as resp:
        body = await resp.json()
        assert resp.status == 403
        assert "x-amzn-RequestId" in resp.headers
        assert "x-amzn-RateLimit-Limit" not in resp.headers
    assert body["errors"][0]["code"] == "Unauthorized"
    assert body["errors"][0]["message"] == "Access to requested resource is denied."


async def test_concurrent_refusals_share_one_refresh(sim, session) -> None:
    amazon = channel(sim, session)
    await amazon.read_listings([ListingRef("MUG")])
    sim.market.tokens.expire_all()
    await asyncio.gather(*(amazon.read_listings([ListingRef("MUG")]) for _ in range(5)))
    assert sim.market.counters.lwa["refresh_token"] == 2


async def test_revoked_refresh_token_is_permanent_and_never_echoed(sim, session) -> None:
    amazon = channel(sim, session, refresh_token="Atzr|revoked-secret-value")
    with pytest.raises(Permanent) as err:
        await amazon.read_listings([ListingRef("MUG")])
    assert "invalid_grant" in str(err.value)
    assert "revoked-secret-value" not in str(err.value)
    assert sim.market.config.client_secret not in str(err.value)


async def test_wrong_client_secret_is_permanent(sim, session) -> None:
    amazon = channel(sim, session, client_secret="not-the-secret")
    with pytest.raises(Permanent, match="invalid_client"):
        await amazon.read_listings([ListingRef("MUG")])


async def test_token_store_keeps_the_access_token_across_a_restart(sim, session) -> None:
    store = MemoryTokens()
    await channel(sim, session, tokens=store).read_listings([ListingRef("MUG")])
    record = store.records["amazon"]
    # Not rotated: the refresh token saved is the one configured.
    assert record.refresh_token == sim.market.config.refresh_token
    assert record.access_token is not None and record.expires_at is not None
    restarted = channel(sim, session, tokens=store)
    await restarted.read_listings([ListingRef("MUG")])
    assert sim.market.counters.lwa["refresh_token"] == 1
    assert store.saves == 1


async def test_lwa_accepts_only_form_encoded_bodies(sim, session) -> None:
    config = sim.market.config
    grant = {
        "grant_type": "refresh_token",
        "refresh_token": config.refresh_token,
        "client_id": config.client_id,
        "client_secret": config.client_secret,
    }
    async with session.post(f"{sim.url}/auth/o2/token", json=grant) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"] == "invalid_request"
    async with session.post(f"{sim.url}/auth/o2/token", data=grant) as resp:
        body = await resp.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["access_token"].startswith("Atza|")
    assert body["refresh_token"] == config.refresh_token
