"""MercadoLibre OAuth against the simulator: single-use refresh tokens, save-before-use, one refresh at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from pydantic import SecretStr

from syncd.channels.base import AuthExpired, ListingRef, TokenRecord, Transient
from syncd.channels.mercadolibre import MercadoLibreChannel
from syncd.config import MercadoLibreSettings
from syncd.sandbox.common import SimServer
from syncd.sandbox.mercadolibre import MercadoLibreSim, create_app
from syncd.sandbox.mercadolibre_core import SimConfig


class Crash(BaseException):
    """Stands for the process dying right after the token store committed."""


class MemoryTokens:
    """A TokenStore that can fail before or crash after committing."""

    def __init__(self) -> None:
        self.records: dict[str, TokenRecord] = {}
        self.saves = 0
        self.fail_saves = False
        self.crash_after_save = False
        self.on_save: list[TokenRecord] = []

    async def load(self, channel: str) -> TokenRecord | None:
        return self.records.get(channel)

    async def save(self, channel: str, record: TokenRecord) -> None:
        if self.fail_saves:
            raise OSError("disk full")
        self.records[channel] = record
        self.saves += 1
        self.on_save.append(record)
        if self.crash_after_save:
            raise Crash()


@pytest.fixture
async def sim() -> AsyncIterator[tuple[MercadoLibreSim, str]]:
    simulator = MercadoLibreSim(SimConfig(seed=11))
    simulator.market.seed_item({"id": "MLM100", "title": "Mate", "price": 50, "available_quantity": 5})
    server = SimServer(create_app(simulator))
    await server.start()
    yield simulator, server.url
    await server.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def _settings(sim: MercadoLibreSim, url: str, refresh_token: str | None = None) -> MercadoLibreSettings:
    return MercadoLibreSettings(
        enabled=True,
        api_base=url,
        token_url=f"{url}/oauth/token",
        user_id=sim.config.user_id,
        application_id=sim.config.application_id,
        client_id=sim.config.client_id,
        client_secret=SecretStr(sim.config.client_secret),
        refresh_token=SecretStr(refresh_token or sim.oauth.current_refresh_token or ""),
        rate_limits={"items_multiget": 1000.0},  # the client-side limiter is not under test here
    )


REF = ListingRef("MLM100")


async def test_refresh_rotates_and_the_used_refresh_token_is_refused_after(
    sim: tuple[MercadoLibreSim, str], session: aiohttp.ClientSession
) -> None:
    simulator, url = sim
    first = simulator.oauth.current_refresh_token
    assert first is not None
    tokens = MemoryTokens()
    channel = MercadoLibreChannel(_settings(simulator, url), session, tokens)
    [obs] = await channel.read_listings([REF])
    assert obs.quantity == 5
    stored = tokens.records["mercadolibre"]
    assert stored.refresh_token != first
    assert stored.refresh_token == simulator.oauth.current_refresh_token
    form = {
        "grant_type": "refresh_token",
        "client_id": simulator.config.client_id,
        "client_secret": simulator.config.client_secret,
        "refresh_token": first,
    }
    async with session.post(f"{url}/oauth/token", data=form) as resp:
        assert resp.status == 400
        assert await resp.json() == {
            "message": "Error validating grant. Your authorization code or refresh token may be expired "
            "or it was already used",
            "error": "invalid_grant",
            "status": 400,
            "cause": [],
        }


async def test_crash_between_save_and_use_does_not_lock_the_account_out(
    sim: tuple[MercadoLibreSim, str], session: aiohttp.ClientSession
) -> None:
    simulator, url = sim
    settings = _settings(simulator, url)  # holds the first refresh token, about to be spent
    tokens = MemoryTokens()
    tokens.crash_after_save = True
    doomed = MercadoLibreChannel(settings, session, tokens)
    with pytest.raises(Crash):
        await doomed.read_listings([REF])
    saved = tokens.records["mercadolibre"]
    assert saved.access_token is not None
    assert simulator.token_uses[saved.access_token] == 0  # saved before anyone used it
    tokens.crash_after_save = False
    reborn = MercadoLibreChannel(settings, session, tokens)
    [obs] = await reborn.read_listings([REF])
    assert obs.quantity == 5
    assert simulator.oauth.refreshes == 1  # the stored access token was still good
    simulator.oauth.expire_access_tokens()
    [obs] = await reborn.read_listings([REF])
    assert obs.quantity == 5
    assert simulator.oauth.refreshes == 2
    assert simulator.oauth.invalid_grants == 0


async def test_concurrent_calls_share_one_refresh(
    sim: tuple[MercadoLibreSim, str], session: aiohttp.ClientSession
) -> None:
    simulator, url = sim
    tokens = MemoryTokens()
    channel = MercadoLibreChannel(_settings(simulator, url), session, tokens)
    results = await asyncio.gather(*(channel.read_listings([REF]) for _ in range(6)))
    assert all(obs.quantity == 5 for [obs] in results)
    assert simulator.oauth.refreshes == 1
    assert simulator.oauth.invalid_grants == 0
    assert tokens.saves == 1


async def test_401_on_expired_access_token_refreshes_once_and_retries(
    sim: tuple[MercadoLibreSim, str], session: aiohttp.ClientSession
) -> None:
    simulator, url = sim
    channel = MercadoLibreChannel(_settings(simulator, url), session, MemoryTokens())
    await channel.read_listings([REF])
    simulator.clock.advance(21600 + 1)  # the simulator's clock runs ahead: our expiry estimate is wrong
    [obs] = await channel.read_listings([REF])
    assert obs.quantity == 5
    assert simulator.oauth.refreshes == 2
    assert simulator.calls["items_multiget"] == 3  # ok, refused with 401, retried


async def test_concurrent_401s_refresh_only_once(
    sim: tuple[MercadoLibreSim, str], session: aiohttp.ClientSession
) -> None:
    simulator, url = sim
    channel = MercadoLibreChannel(_settings(simulator, url), session, MemoryTokens())
    await channel.read_listings([REF])
    simulator.oauth.expire_access_tokens()
    await asyncio.gather(*(channel.read_listings([REF]) for _ in range(4)))
    assert simulator.oauth.refreshes == 2
    assert simulator.oauth.invalid_grants == 0


async def test_refused_refresh_token_asks_for_reauthorization_without_leaking_it(
    sim: tuple[MercadoLibreSim, str], session: aiohttp.ClientSession
) -> None:
    simulator, url = sim
    bogus = "TG-000000000000000000000000-1"
    channel = MercadoLibreChannel(_settings(simulator, url, bogus), session, MemoryTokens())
    with pytest.raises(AuthExpired) as caught:
        await channel.read_listings([REF])
    assert "re-authorize" in str(caught.value)
    assert bogus not in str(caught.value)
    assert simulator.config.client_secret not in str(caught.value)


async def test_failed_save_keeps_new_token_unused_until_it_is_durable(
    sim: tuple[MercadoLibreSim, str], session: aiohttp.ClientSession
) -> None:
    simulator, url = sim
    tokens = MemoryTokens()
    tokens.fail_saves = True
    channel = MercadoLibreChannel(_settings(simulator, url), session, tokens)
    with pytest.raises(Transient, match="could not store"):
        await channel.read_listings([REF])
    assert simulator.calls["items_multiget"] == 0
    tokens.fail_saves = False
    [obs] = await channel.read_listings([REF])
    assert obs.quantity == 5
    assert simulator.oauth.refreshes == 1  # the held refresh result was saved, not thrown away
    assert tokens.records["mercadolibre"].refresh_token == simulator.oauth.current_refresh_token


async def test_stored_record_wins_over_the_configured_refresh_token(
    sim: tuple[MercadoLibreSim, str], session: aiohttp.ClientSession
) -> None:
    simulator, url = sim
    tokens = MemoryTokens()
    current = simulator.oauth.current_refresh_token
    assert current is not None
    tokens.records["mercadolibre"] = TokenRecord(refresh_token=current)
    channel = MercadoLibreChannel(_settings(simulator, url, "TG-stale-config-token"), session, tokens)
    [obs] = await channel.read_listings([REF])
    assert obs.quantity == 5
    assert simulator.oauth.invalid_grants == 0


async def test_token_rotated_by_another_process_is_picked_up_from_the_store(
    sim: tuple[MercadoLibreSim, str], session: aiohttp.ClientSession
) -> None:
    simulator, url = sim
    tokens = MemoryTokens()
    first = MercadoLibreChannel(_settings(simulator, url), session, tokens)
    second = MercadoLibreChannel(_settings(simulator, url), session, tokens)
    await first.read_listings([REF])  # rotates and stores; `second` has not loaded yet
    await second.auth.token()  # loads the stored record
    simulator.oauth.expire_access_tokens()
    await first.read_listings([REF])  # rotates again; `second` now holds a spent refresh token
    [obs] = await second.read_listings([REF])
    assert obs.quantity == 5
    assert simulator.oauth.invalid_grants == 1  # its own attempt failed, the stored token worked
