"""Shared fixtures: a real daemon on loopback, a real SQLite file, in-memory channels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from syncd.config import ChannelsSettings, LocationSettings, Settings
from syncd.daemon import Daemon
from tests.fakes import MemoryChannel

CATALOG = """sku,title,location,channel,external_id,variation_id,safety_buffer,cap,share
MUG,Mug,main,amazon,MUG-A,,0,,
MUG,Mug,main,mercadolibre,MLM1,,0,,
MUG,Mug,main,threepl,MUG,,0,,
TEE-S,Tee S,main,mercadolibre,MLM2,V1,1,,
TEE-M,Tee M,main,mercadolibre,MLM2,V2,0,5,
TEE-M,Tee M,main,amazon,TEE-M,,0,,50%
BOX,Box,main,,,,0,,
SET,Mug pair,main,mercadolibre,MLM3,,0,,
SET,Mug pair,main,amazon,SET-A,,0,,
kit_sku,component_sku,qty
SET,MUG,2
"""


def make_settings(tmp: Path, **outbox: Any) -> Settings:
    """Settings for a test daemon: loopback ephemeral ports, a file in tmp, fast retries."""
    s = Settings(channels=ChannelsSettings())
    s.daemon.database = tmp / "syncd.db"
    s.daemon.admin_listen = "127.0.0.1:0"
    s.daemon.public_listen = "127.0.0.1:0"
    s.locations = {"main": LocationSettings(name="Main", sources=["threepl", "manual"])}
    s.daemon.reservation_sweep_seconds = 0.5
    s.daemon.health_check_seconds = 0.2
    s.outbox.backoff_base_seconds = outbox.get("base", 0.01)
    s.outbox.backoff_cap_seconds = outbox.get("cap", 0.05)
    s.outbox.max_attempts = outbox.get("max_attempts", 5)
    s.outbox.deferral_budget = outbox.get("deferral_budget", 50)
    return s


class Harness:
    """A running daemon plus an HTTP client for its admin API."""

    def __init__(self, daemon: Daemon, http: aiohttp.ClientSession, channels: dict[str, MemoryChannel]) -> None:
        self.daemon = daemon
        self.http = http
        self.channels = channels

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        """Call the admin API; returns (status, parsed JSON or text)."""
        async with self.http.request(method, self.daemon.admin_url + path, json=body, **kw) as resp:
            text = await resp.text()
            try:
                import json

                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text

    async def product(self, sku: str) -> dict[str, Any]:
        """GET /api/products/{sku}, asserting it exists."""
        status, body = await self.call("GET", f"/api/products/{sku}")
        assert status == 200, body
        assert isinstance(body, dict)
        return body

    async def count(self, sku: str, qty: int, as_of: str | None = None, source: str = "manual") -> tuple[int, Any]:
        """POST a count."""
        body: dict[str, Any] = {"sku": sku, "location": "main", "qty": qty, "source": source}
        if as_of:
            body["as_of"] = as_of
        return await self.call("POST", "/api/stock/counts", body)


async def start_harness(tmp: Path, settings: Settings | None = None,
                        channels: dict[str, MemoryChannel] | None = None,
                        catalog: str = CATALOG) -> Harness:
    """Start a daemon with in-memory channels and the test catalog imported."""
    chans = channels if channels is not None else {
        "amazon": MemoryChannel("amazon"), "mercadolibre": MemoryChannel("mercadolibre")}
    daemon = Daemon(settings or make_settings(tmp), channels=chans)
    await daemon.start()
    http = aiohttp.ClientSession()
    harness = Harness(daemon, http, chans)
    if catalog:
        status, body = await harness.call("POST", "/api/catalog", data=catalog.encode())
        assert status == 200, body
    return harness


async def stop_harness(h: Harness) -> None:
    """Stop the client and the daemon."""
    await h.http.close()
    await h.daemon.stop()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    """A running daemon with the test catalog and two in-memory channels."""
    h = await start_harness(tmp_path)
    yield h
    await stop_harness(h)
