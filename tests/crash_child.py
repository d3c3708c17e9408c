"""Child process for the kill -9 harness: a real daemon under steady load, printing every ack.

Usage: python -m tests.crash_child DIR START [--replay N] [--drain]
Receipt n has dedupe key "r<n>" and qty 1; "ACK n" is printed only after the writer committed it.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from syncd.capture.events import Event, Receipt
from syncd.daemon import Daemon
from syncd.store.apply import ingest
from tests.conftest import CATALOG, make_settings
from tests.fakes import MemoryChannel


async def main(directory: Path, start: int, replay: int, drain: bool) -> None:
    settings = make_settings(directory, max_attempts=10_000)
    fresh = not (directory / "syncd.db").exists()
    channels = {"amazon": MemoryChannel("amazon"), "mercadolibre": MemoryChannel("mercadolibre")}
    daemon = Daemon(settings, channels=channels)
    await daemon.start()
    assert daemon.service is not None
    if fresh:
        await daemon.service.import_catalog(CATALOG)
    policy = daemon.service.policy

    async def send(n: int) -> str:
        event = Event(dedupe_key=f"r{n}", source="threepl",
                      body=Receipt(sku="MUG", location="main", qty=1, ref=f"R{n}", at=datetime.now(UTC)))
        result = await daemon.writer.submit(lambda tx: ingest(tx, event, policy))
        return str(result.outcome.value)

    # Redeliver what was acknowledged before the crash: every one must be a duplicate.
    for n in range(max(0, start - replay), start):
        outcome = await send(n)
        print(f"REPLAY {n} {outcome}", flush=True)
    print("READY", flush=True)
    if drain:
        for _ in range(1500):  # up to 30 s
            if not (await daemon.reader.counts())["outbox_pending"]:
                break
            await asyncio.sleep(0.02)
        print("DRAINED", flush=True)
        await daemon.stop()
        return
    counter = start

    async def submitter() -> None:
        nonlocal counter
        while True:
            n = counter
            counter += 1
            await send(n)
            print(f"ACK {n}", flush=True)

    await asyncio.gather(*[submitter() for _ in range(16)])


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(Path(args[0]), int(args[1]), int(args[args.index("--replay") + 1]) if "--replay" in args else 0,
                     "--drain" in args))
