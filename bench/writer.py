"""Writer throughput and latency, side by side with a raw sqlite3 loop doing the same work.

Both sides run the same command (the real `ingest` of a receipt: inbox row, ledger row, on-hand
update, available recompute, outbox upsert) with the same batching, against the same kind of file
with the same pragmas. A: through the daemon's Writer (asyncio.Queue, group commit, one thread hop
per batch, a future per command). B: a plain loop on one sqlite3 connection. Rounds interleave
A B A B; we print medians and the ratio A/B. Run: .venv/bin/python bench/writer.py [--events N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from syncd.capture.events import Event, Receipt
from syncd.domain.catalog import parse_catalog
from syncd.store import commands
from syncd.store.apply import Policy, ingest
from syncd.store.db import migrate, open_writer
from syncd.store.stockcalc import flush
from syncd.store.writer import Tx, Writer

SKUS = [f"SKU-{i:03d}" for i in range(50)]
CATALOG = "sku,title,location,channel,external_id,variation_id,safety_buffer,cap,share\n" + "".join(
    f"{s},{s},main,mercadolibre,ML{i},,1,,\n{s},{s},main,amazon,AM{i},,1,,\n" for i, s in enumerate(SKUS))
POLICY = Policy()


def events(n: int, tag: str) -> list[Event]:
    now = datetime.now(UTC)
    return [Event(dedupe_key=f"{tag}-{i}", source="threepl", received_at=now,
                  body=Receipt(sku=SKUS[i % len(SKUS)], location="main", qty=1, ref=f"{tag}{i}", at=now))
            for i in range(n)]


def seed(path: Path, synchronous: str) -> None:
    conn = open_writer(path, synchronous)
    migrate(conn)
    conn.execute("BEGIN IMMEDIATE")
    tx = Tx(conn=conn, now=datetime.now(UTC))
    commands.sync_locations(tx, {"main": ("Main", "warehouse", ["threepl", "manual"])})
    commands.import_catalog(tx, parse_catalog(CATALOG, {"amazon", "mercadolibre", "threepl"}, {"main"}), set())
    flush(tx)
    conn.execute("COMMIT")
    conn.close()


async def run_writer(
    path: Path, evs: list[Event], in_flight: int, synchronous: str
) -> tuple[float, list[float], float]:
    writer = Writer(path, synchronous, finalize=flush)
    await writer.start()
    latencies: list[float] = []
    queue = iter(evs)

    async def client() -> None:
        for event in queue:
            t0 = time.perf_counter()
            await writer.submit(lambda tx, e=event: ingest(tx, e, POLICY))
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*[client() for _ in range(in_flight)])
    elapsed = time.perf_counter() - start
    mean_batch = writer.stats.commands / max(1, writer.stats.batches)
    await writer.stop()
    return len(evs) / elapsed, latencies, mean_batch


def run_raw(path: Path, evs: list[Event], batch: int, synchronous: str) -> float:
    conn = open_writer(path, synchronous)
    start = time.perf_counter()
    for i in range(0, len(evs), batch):
        conn.execute("BEGIN IMMEDIATE")
        tx = Tx(conn=conn, now=datetime.now(UTC))
        for event in evs[i:i + batch]:
            conn.execute("SAVEPOINT cmd")
            ingest(tx, event, POLICY)
            conn.execute("RELEASE cmd")
        flush(tx)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return len(evs) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--in-flight", type=int, default=50, help="concurrent submitters (like HTTP connections)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    args = parser.parse_args()
    w_rates, r_rates, p50s, p99s, batches = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            a, b = Path(tmp) / f"a{rnd}.db", Path(tmp) / f"b{rnd}.db"
            seed(a, args.synchronous)
            seed(b, args.synchronous)
            rate, lat, mean_batch = asyncio.run(run_writer(a, events(args.events, f"a{rnd}"), args.in_flight,
                                                           args.synchronous))
            lat.sort()
            w_rates.append(rate)
            p50s.append(lat[len(lat) // 2] * 1000)
            p99s.append(lat[int(len(lat) * 0.99)] * 1000)
            batches.append(mean_batch)
            r_rates.append(run_raw(b, events(args.events, f"b{rnd}"), max(1, round(mean_batch)), args.synchronous))
            print(f"round {rnd + 1}: writer {rate:,.0f} ev/s (mean batch {mean_batch:.1f}, p50 {p50s[-1]:.2f} ms,"
                  f" p99 {p99s[-1]:.2f} ms) | raw sqlite3 {r_rates[-1]:,.0f} ev/s", flush=True)
    w, r = statistics.median(w_rates), statistics.median(r_rates)
    print(f"\nsynchronous={args.synchronous}, {args.events} events x {args.rounds} rounds, "
          f"{args.in_flight} in flight, real ingest (inbox+ledger+available+outbox) per event")
    print(f"writer (queue -> group commit):   {w:,.0f} events/s   submit->commit p50 {statistics.median(p50s):.2f} ms"
          f"  p99 {statistics.median(p99s):.2f} ms  mean batch {statistics.median(batches):.1f}")
    print(f"raw sqlite3 loop, same batching:  {r:,.0f} events/s")
    print(f"ratio writer / raw:               {w / r:.2f}")


if __name__ == "__main__":
    main()
