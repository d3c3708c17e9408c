"""The retry queue against in-memory channels that fail, rate-limit and recover."""

from __future__ import annotations

import asyncio
from pathlib import Path

from syncd.channels.base import Permanent, RateLimited, Transient
from tests.conftest import make_settings, start_harness, stop_harness
from tests.fakes import MemoryChannel
from tests.test_api import wait_for


async def test_transient_failures_retry_until_the_value_lands(tmp_path: Path) -> None:
    amazon, ml = MemoryChannel("amazon"), MemoryChannel("mercadolibre")
    amazon.errors.extend([Transient("503"), Transient("timeout"), Transient("503")])
    h = await start_harness(tmp_path, channels={"amazon": amazon, "mercadolibre": ml})
    try:
        await h.count("MUG", 7)

        async def landed() -> bool:
            return amazon.qty("MUG-A") == 7 and amazon.qty("SET-A") == 3

        await wait_for(landed)
        outcomes = []
        for sku in ("MUG", "SET", "TEE-M"):
            pushes = (await h.product(sku))["explain"]["pushes"]
            outcomes += [p["outcome"] for p in pushes if p["channel"] == "amazon"]
        assert outcomes.count("transient") == 3  # every failure recorded, none lost
        assert outcomes.count("ok") == 3
    finally:
        await stop_harness(h)


async def test_rate_limit_defers_without_burning_attempts(tmp_path: Path) -> None:
    amazon, ml = MemoryChannel("amazon"), MemoryChannel("mercadolibre")
    # More 429s than max_attempts (5): a push still lands, because 429s only defer.
    amazon.errors.extend([RateLimited("429", retry_after=0.01) for _ in range(8)])
    h = await start_harness(tmp_path, settings=make_settings(tmp_path, max_attempts=5),
                            channels={"amazon": amazon, "mercadolibre": ml})
    try:
        await h.count("MUG", 4)

        async def landed() -> bool:
            return amazon.qty("MUG-A") == 4 and amazon.qty("SET-A") == 2

        await wait_for(landed)
        _, dlq = await h.call("GET", "/api/dlq")
        assert dlq == []
    finally:
        await stop_harness(h)


async def test_retry_after_is_honoured_over_a_shorter_backoff(tmp_path: Path) -> None:
    amazon, ml = MemoryChannel("amazon"), MemoryChannel("mercadolibre")
    amazon.errors.append(RateLimited("429", retry_after=0.6))
    h = await start_harness(tmp_path, channels={"amazon": amazon, "mercadolibre": ml})
    try:
        loop = asyncio.get_running_loop()
        await h.count("MUG", 3)
        start = loop.time()

        async def landed() -> bool:
            return amazon.qty("MUG-A") == 3 and amazon.qty("SET-A") == 1

        await wait_for(landed)
        assert loop.time() - start >= 0.5  # backoff alone (cap 0.05 s) would have retried at once
    finally:
        await stop_harness(h)


async def test_permanent_error_goes_to_dead_letter_with_an_alert_and_can_be_retried(tmp_path: Path) -> None:
    amazon, ml = MemoryChannel("amazon"), MemoryChannel("mercadolibre")
    amazon.always = Permanent("400 invalid listing")
    h = await start_harness(tmp_path, channels={"amazon": amazon, "mercadolibre": ml})
    try:
        await h.count("MUG", 5)

        async def dead() -> bool:
            _, rows = await h.call("GET", "/api/dlq")
            return len(rows) == 3  # MUG-A, SET-A and TEE-M

        await wait_for(dead)
        _, alerts = await h.call("GET", "/api/alerts")
        assert {a["kind"] for a in alerts} >= {"dead_push"}
        _, doc = await h.call("GET", "/status")
        assert doc["channels"]["amazon"]["dead"] == 3
        assert ml.qty("MLM1") == 5  # one channel's dead push never blocks another
        amazon.always = None
        _, body = await h.call("POST", "/api/dlq/retry", {})
        assert body == {"requeued": 3}

        async def landed() -> bool:
            return amazon.qty("MUG-A") == 5 and amazon.qty("SET-A") == 2

        await wait_for(landed)
    finally:
        await stop_harness(h)


async def test_outage_queues_pushes_then_drains_with_the_newest_value(tmp_path: Path) -> None:
    amazon, ml = MemoryChannel("amazon"), MemoryChannel("mercadolibre")
    h = await start_harness(tmp_path, settings=make_settings(tmp_path, max_attempts=1000),
                            channels={"amazon": amazon, "mercadolibre": ml})
    try:
        await h.count("MUG", 10)
        await wait_for(lambda: _true(ml.qty("MLM1") == 10))
        ml.always = Transient("connection refused")
        for qty in (9, 8, 7):
            await h.count("MUG", qty)
        _, doc = await h.call("GET", "/status")
        assert doc["channels"]["mercadolibre"]["queue_depth"] >= 1
        await asyncio.sleep(0.2)
        assert ml.qty("MLM1") == 10
        ml.always = None
        await wait_for(lambda: _true(ml.qty("MLM1") == 7))
        values = [v for ext, _, f, v in ml.history if ext == "MLM1" and f == "quantity"]
        assert values[values.index("10"):] == ["10", "7"]  # the stale 9 and 8 were never sent
        assert ml.max_inflight_per_listing == 1
    finally:
        await stop_harness(h)


async def test_channel_is_down_after_repeated_failures_and_ok_after_recovery(tmp_path: Path) -> None:
    amazon, ml = MemoryChannel("amazon"), MemoryChannel("mercadolibre")
    settings = make_settings(tmp_path, max_attempts=1000)
    settings.channels.mercadolibre.down_after_failures = 3
    h = await start_harness(tmp_path, settings=settings, channels={"amazon": amazon, "mercadolibre": ml})
    try:
        ml.always = Transient("503")
        await h.count("MUG", 2)

        async def down() -> bool:
            status, doc = await h.call("GET", "/status")
            return status == 503 and doc["channels"]["mercadolibre"]["state"] == "down"

        await wait_for(down)

        async def stale_alert_open() -> bool:
            _, alerts = await h.call("GET", "/api/alerts")
            return any(a["kind"] == "stale_channel" and a["channel"] == "mercadolibre" for a in alerts)

        await wait_for(stale_alert_open)
        ml.always = None

        async def ok() -> bool:
            status, doc = await h.call("GET", "/status")
            return status == 200 and doc["channels"]["mercadolibre"]["queue_depth"] == 0

        await wait_for(ok)

        async def stale_alert_closed() -> bool:
            return not await stale_alert_open()

        await wait_for(stale_alert_closed)
        _, history = await h.call("GET", "/api/alerts?all=1")
        assert any(a["kind"] == "stale_channel" and a["message"].endswith("(recovered)") for a in history)
    finally:
        await stop_harness(h)


async def test_restart_resumes_the_queue(tmp_path: Path) -> None:
    amazon, ml = MemoryChannel("amazon"), MemoryChannel("mercadolibre")
    ml.always = Transient("503")
    h = await start_harness(tmp_path, settings=make_settings(tmp_path, max_attempts=1000),
                            channels={"amazon": amazon, "mercadolibre": ml})
    await h.count("MUG", 6)
    await stop_harness(h)
    fresh = MemoryChannel("mercadolibre")
    h = await start_harness(tmp_path, settings=make_settings(tmp_path, max_attempts=1000),
                            channels={"amazon": MemoryChannel("amazon"), "mercadolibre": fresh}, catalog="")
    try:
        await wait_for(lambda: _true(fresh.qty("MLM1") == 6 and fresh.qty("MLM3") == 3))
    finally:
        await stop_harness(h)


async def _true(value: bool) -> bool:
    return value


async def test_listing_drift_is_repaired_only_when_it_persists(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from syncd.capture.events import Event, ListingObservation
    from syncd.store.apply import ingest

    settings = make_settings(tmp_path)
    settings.stock.observation_grace_seconds = 60
    amazon, ml = MemoryChannel("amazon"), MemoryChannel("mercadolibre")
    h = await start_harness(tmp_path, settings=settings, channels={"amazon": amazon, "mercadolibre": ml})
    try:
        await h.count("MUG", 10)
        await wait_for(lambda: _true(ml.qty("MLM1") == 10))
        assert h.daemon.service is not None
        policy = h.daemon.service.policy
        t0 = datetime.now(UTC)

        async def observe(qty: int, at: datetime, key: str) -> None:
            event = Event(dedupe_key=key, source="mercadolibre", body=ListingObservation(
                channel="mercadolibre", external_id="MLM1", quantity=qty, at=at))
            await h.daemon.writer.submit(lambda tx: ingest(tx, event, policy))

        pushes_before = len([v for v in ml.history if v[0] == "MLM1"])
        await observe(4, t0, "obs-1")  # someone changed it by hand on MercadoLibre...
        await asyncio.sleep(0.2)
        assert len([v for v in ml.history if v[0] == "MLM1"]) == pushes_before  # only noted, not re-pushed
        _, alerts = await h.call("GET", "/api/alerts")
        assert not [a for a in alerts if a["kind"] == "drift" and a["channel"] == "mercadolibre"]
        await observe(4, t0 + timedelta(seconds=61), "obs-2")  # ...and it is still wrong a minute later
        await wait_for(lambda: _true([v for v in ml.history if v[0] == "MLM1"][-2:] == [
            ("MLM1", None, "quantity", "10"), ("MLM1", None, "quantity", "10")]))
        _, alerts = await h.call("GET", "/api/alerts")
        assert [a for a in alerts if a["kind"] == "drift" and a["channel"] == "mercadolibre"]
    finally:
        await stop_harness(h)
