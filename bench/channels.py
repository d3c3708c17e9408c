"""Marketplace calls per sale, 429s provoked, and capture → push latency during a burst of orders.

The real daemon runs against the Amazon, MercadoLibre and 3PL simulators on loopback, each simulator
enforcing the published usage plans (Amazon's per-operation token buckets; MercadoLibre's adapter
defaults, ML publishes none) and the adapters limiting themselves to the same plans. A burst of
orders (Amazon and MercadoLibre, default 1,000) arrives within seconds. `--speedup K` multiplies every
rate on both sides by K so the run takes minutes, not an hour. A smaller K means pushes queue longer
behind the limits and coalesce more (fewer calls per sale); 429 counts should stay 0 at any K.
The baseline, computed for the same orders, is a naive integration: one fetch per order
notification plus one push per affected listing on the other channel per order.

Run: .venv/bin/python bench/channels.py [--orders 1000] [--speedup 20]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from syncd.channels.amazon.client import USAGE_PLANS
from syncd.channels.mercadolibre.client import DEFAULT_RATE_LIMITS
from syncd.daemon import Daemon, import_catalog_offline
from syncd.demo import Sandbox
from syncd.log import configure
from syncd.sandbox.catalog import DemoCatalog, DemoProduct

PRODUCTS = 20


def catalog() -> DemoCatalog:
    products = [DemoProduct(f"BENCH-{i:02d}", f"Bench product {i}", 10.0 + i, on_hand=100_000) for i in range(PRODUCTS)]
    return DemoCatalog(products=products, kit_components={"BENCH-00": 2, "BENCH-01": 1})


def scale(sandbox: Sandbox, daemon_settings: object, k: float) -> None:
    """Published plans ×k on both sides of the wire."""
    s = daemon_settings
    sandbox.amazon.market.config.plans = {op: (rate * k, burst) for op, (rate, burst) in USAGE_PLANS.items()}
    s.channels.amazon.rate_limits = {op: rate * k for op, (rate, _) in USAGE_PLANS.items()}  # type: ignore[attr-defined]
    sandbox.ml.set_rate_limits({op: (rps * k, max(1.0, rps * k)) for op, rps in DEFAULT_RATE_LIMITS.items()})
    s.channels.mercadolibre.rate_limits = {op: rps * k for op, rps in DEFAULT_RATE_LIMITS.items()}  # type: ignore[attr-defined]


async def run(orders: int, k: float, amazon_share: float, settle: float) -> None:
    cat = catalog()
    sandbox = Sandbox(cat)
    await sandbox.start()
    with tempfile.TemporaryDirectory() as tmp:
        settings = sandbox.settings(Path(tmp), 0)
        settings.daemon.log_format = "console"
        scale(sandbox, settings, k)
        await import_catalog_offline(settings, cat.csv())
        daemon = Daemon(settings)
        await daemon.start()
        sandbox.point_notifications_at(daemon.public_url)
        db = settings.daemon.database
        try:
            # Let the first sync (3PL counts → every listing) finish before the burst.
            await _until(lambda: _pending(db) == 0 and _count(db, "SELECT COUNT(*) FROM pushed") > 0, 120)
            await asyncio.sleep(2)
            before = _calls(sandbox)
            rng = random.Random(7)
            t0 = time.perf_counter()
            placed = {"amazon": 0, "mercadolibre": 0}
            for _ in range(orders):
                p = rng.choice(cat.products)
                if rng.random() < amazon_share:
                    sandbox.amazon.market.make_sale({"items": [{"sku": p.sku, "qty": 1}]})
                    placed["amazon"] += 1
                else:
                    item, _ = cat.ml_items[p.sku]
                    sandbox.ml.market.sale(item, None, 1)
                    placed["mercadolibre"] += 1
                await asyncio.sleep(0.002)
            burst = time.perf_counter() - t0
            await _until(lambda: _count(db, "SELECT COUNT(*) FROM orders") >= orders and _pending(db) == 0, settle)
            elapsed = time.perf_counter() - t0
            after = _calls(sandbox)
        finally:
            await daemon.stop()
            await sandbox.stop()
        report(db, placed, before, after, burst, elapsed, k)


def _calls(sandbox: Sandbox) -> dict[str, dict[str, int]]:
    amz = sandbox.amazon.market.counters
    ml = sandbox.ml.counters()
    return {"amazon": dict(amz.calls), "amazon_429": dict(amz.throttled), "mercadolibre": dict(ml["calls"]),
            "mercadolibre_429": dict(ml["rate_limited"])}


def _count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def _pending(db: Path) -> int:
    return _count(db, "SELECT COUNT(*) FROM outbox WHERE state = 'pending'") + _count(
        db, "SELECT COUNT(*) FROM inbox WHERE state = 'pending_fetch'")


async def _until(predicate, within: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("bench did not settle in time")
        await asyncio.sleep(0.25)


def _latencies(db: Path) -> list[float]:
    """Per order: its commit → the next push outcome on another channel's listing of the same product."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT o.recorded, (SELECT MIN(g.at) FROM push_log g JOIN listings x ON x.id = g.listing_id"
            "  WHERE x.channel != o.channel AND g.at >= o.recorded AND x.sku = l.sku)"
            " FROM orders o JOIN order_lines l USING (channel, order_id)").fetchall()
    finally:
        conn.close()
    return sorted((datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()
                  for a, b in rows if b is not None)


def report(db: Path, placed: dict[str, int], before: dict[str, dict[str, int]], after: dict[str, dict[str, int]],
           burst: float, elapsed: float, k: float) -> None:
    def delta(key: str) -> dict[str, int]:
        return {op: n - before[key].get(op, 0) for op, n in after[key].items() if n - before[key].get(op, 0)}

    orders = sum(placed.values())
    amazon, ml = delta("amazon"), delta("mercadolibre")
    total = sum(amazon.values()) + sum(ml.values())
    throttled = sum(delta("amazon_429").values()) + sum(delta("mercadolibre_429").values())
    # Naive: fetch each order once, push each other-channel listing once per order.
    naive = orders * 2
    lat = _latencies(db)
    print(f"\n{orders} orders ({placed['amazon']} Amazon, {placed['mercadolibre']} MercadoLibre)"
          f" placed in {burst:.1f} s;"
          f" all applied and pushed after {elapsed:.1f} s (rates x{k:g})")
    print(f"Amazon calls:       {sum(amazon.values()):>6}  {dict(sorted(amazon.items()))}")
    print(f"MercadoLibre calls: {sum(ml.values()):>6}  {dict(sorted(ml.items()))}")
    print(f"marketplace calls per sale: {total / orders:.2f}   naive baseline: {naive / orders:.2f}"
          f"   ratio syncd / naive: {total / naive:.2f}")
    print(f"429s provoked at the published plans: {throttled}")
    if lat:
        print(f"capture → push outcome on the other channel: p50 {statistics.median(lat) * 1000:.0f} ms,"
              f" p99 {lat[int(len(lat) * 0.99)] * 1000:.0f} ms  (n={len(lat)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--speedup", type=float, default=20.0)
    parser.add_argument("--amazon-share", type=float, default=0.3)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    configure("console", "warning")
    asyncio.run(run(args.orders, args.speedup, args.amazon_share, args.timeout))


if __name__ == "__main__":
    main()
