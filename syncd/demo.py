"""`syncd demo`: the daemon in a temporary state directory with a seeded catalog, no config, no network."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import structlog

from syncd.config import LocationSettings, Settings
from syncd.daemon import Daemon
from syncd.log import configure

log = structlog.get_logger(__name__)

SEED_CATALOG = Path(__file__).parent / "sandbox" / "data" / "demo_catalog.csv"


def demo_settings(state_dir: Path, port: int) -> Settings:
    """Settings for a demo run: everything on loopback, the database in `state_dir`."""
    settings = Settings()
    settings.daemon.database = state_dir / "syncd.db"
    settings.daemon.admin_listen = f"127.0.0.1:{port}"
    settings.daemon.public_listen = "127.0.0.1:0"
    settings.locations = {
        "main": LocationSettings(name="3PL warehouse", kind="warehouse", sources=["threepl", "manual"]),
        "fba": LocationSettings(name="Amazon FBA", kind="fba", sources=["amazon", "manual"]),
    }
    return settings


async def _demo(duration: float | None, port: int) -> None:
    with tempfile.TemporaryDirectory(prefix="syncd-demo-") as tmp:
        daemon = Daemon(demo_settings(Path(tmp), port), build_channels=False)
        await daemon.start()
        assert daemon.service is not None
        summary = await daemon.service.import_catalog(SEED_CATALOG.read_text(encoding="utf-8"))
        now = datetime.now(UTC)
        for product in await daemon.reader.products():
            if not product["is_kit"]:
                await daemon.service.count(product["sku"], "main", 20, now, source="manual")
        log.info("demo ready", board=f"{daemon.admin_url}/", status=f"{daemon.admin_url}/status", **summary)
        print(f"\n  syncd demo is running: open {daemon.admin_url}/status  (Ctrl-C stops it)\n", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration)
        finally:
            await daemon.stop()


def run_demo(duration: float | None = None, port: int = 8781) -> int:
    """Run the demo until Ctrl-C or `duration` seconds; return the exit code."""
    configure("console", "info")
    asyncio.run(_demo(duration, port))
    return 0
