"""The Amazon simulator's /_sim/ control plane over HTTP, and running it standalone."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from syncd.sandbox.amazon import AmazonSimulator, SimConfig

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def sim() -> AsyncIterator[AmazonSimulator]:
    async with AmazonSimulator(SimConfig(consistency_delay=0.0, search_lag=0.0)) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def control(
    session: aiohttp.ClientSession, sim: AmazonSimulator, path: str, body: Any = None, status: int = 200
) -> Any:
    method = "GET" if body is None else "POST"
    async with session.request(method, f"{sim.url}/_sim/{path}", json=body) as resp:
        assert resp.status == status, await resp.text()
        return await resp.json()


async def test_seed_sell_and_move_an_order_through_the_control_plane(sim, session) -> None:
    await control(session, sim, "listings", {"listings": [{"sku": "MUG", "quantity": 5, "price": "9.90"}]})
    await control(session, sim, "listings", {"listings": [{"sku": "KETTLE", "fba": True, "price": "59"}]})
    await control(session, sim, "inventory", {"items": [{"sku": "KETTLE", "fulfillable": 4}]})
    sold = await control(
        session, sim, "sale", {"items": [{"sku": "MUG", "qty": 2}], "status": "PENDING"}, 201
    )
    await control(session, sim, "sale", {"items": [{"sku": "MUG", "qty": 9}]}, 409)
    await control(
        session, sim, "sale", {"items": [{"sku": "KETTLE", "qty": 1}], "fulfilled_by": "AMAZON"}, 201
    )
    paid = await control(session, sim, f"orders/{sold['order_id']}", {"action": "pay"})
    assert paid["status"] == "UNSHIPPED" and paid["last_updated"] > sold["last_updated"]
    await control(session, sim, f"orders/{sold['order_id']}", {"action": "pay"}, 409)
    await control(session, sim, f"orders/{sold['order_id']}", {"action": "teleport"}, 400)
    await control(session, sim, "orders/000-0000000-0000000", {"action": "ship"}, 404)
    state = await control(session, sim, "state")
    assert state["listings"]["MUG"]["quantity"] == 3
    assert state["fba"]["KETTLE"]["inventoryDetails"]["fulfillableQuantity"] == 3
    assert state["orders"][sold["order_id"]]["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    notes = await control(session, sim, "notifications")
    assert [n["NotificationType"] for n in notes["notifications"]].count("ORDER_CHANGE") == 3


async def test_config_clock_tokens_faults_and_counters(sim, session) -> None:
    config = await control(
        session,
        sim,
        "config",
        {"token_lifetime": 60, "order_change_to_webhook": "false", "plans": {"getOrder": [1, 2]}},
    )
    assert config["token_lifetime"] == 60.0 and config["order_change_to_webhook"] is False
    assert config["client_secret"] == "***" and sim.market.config.plans["getOrder"] == (1.0, 2.0)
    await control(session, sim, "config", {"no_such_knob": 1}, 400)
    before = (await control(session, sim, "clock", {"advance_seconds": 0}))["now"]
    after = (await control(session, sim, "clock", {"advance_seconds": 3600}))["now"]
    assert after > before
    token = sim.market.tokens.issue(60)
    assert (await control(session, sim, "tokens/expire", {}))["expired"] == 1
    assert sim.market.tokens.check(token) == "The access token you provided has expired."
    faults = await control(
        session, sim, "faults", {"loss": 0.1, "duplicate": 0.2, "reorder_delay": 1, "seed": 4}
    )
    assert faults == {"loss": 0.1, "duplicate": 0.2, "reorder_delay": 1.0, "seed": 4}
    async with session.get(f"{sim.url}/orders/2026-01-01/orders/x") as resp:
        assert resp.status == 403
    counters = await control(session, sim, "counters")
    assert counters["calls"] == {"getOrder": 1} and counters["statuses"] == {"403": 1}
    assert (await control(session, sim, "counters/reset", {}))["calls"] == {}


async def test_outage_modes_answer_like_a_broken_amazon_but_keep_the_control_plane(sim, session) -> None:
    await control(session, sim, "outage", {"mode": "5xx"})
    async with session.get(f"{sim.url}/orders/2026-01-01/orders") as resp:
        assert resp.status == 503 and "x-amzn-RequestId" in resp.headers
        assert (await resp.json())["errors"][0]["code"] == "ServiceUnavailable"
    assert (await control(session, sim, "state"))["mode"] == "5xx"
    await control(session, sim, "outage", {"mode": "refuse"}, 400)  # would lock itself out
    await control(session, sim, "outage", {"mode": "refuse", "for_seconds": 0.3})
    async with aiohttp.ClientSession() as fresh:  # a new connection, not a pooled keep-alive one
        with pytest.raises(aiohttp.ClientConnectionError):
            async with fresh.get(f"{sim.url}/_sim/state"):
                pass
    await asyncio.sleep(0.5)
    assert (await control(session, sim, "state"))["mode"] == "up"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_runs_standalone_from_the_command_line(session) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncd.sandbox.amazon",
        "--port",
        str(port),
        "--seed-demo",
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            banner = await proc.stdout.readline()
        assert f"127.0.0.1:{port}".encode() in banner
        async with session.get(f"http://127.0.0.1:{port}/_sim/state") as resp:
            state = await resp.json()
        assert state["listings"]["MUG-BLUE"]["quantity"] == 12
    finally:
        proc.terminate()
        async with asyncio.timeout(10):
            assert await proc.wait() == 0
