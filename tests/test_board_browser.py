"""The board in a real headless Chromium: every section renders, numbers move live, forms act.

Screenshots land in docs/board-*.png. Needs Debian's chromium at /usr/bin/chromium (skipped without it).
"""

from __future__ import annotations

import random
import re
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from syncd.channels.base import Transient
from tests.conftest import Harness, make_settings, start_harness, stop_harness
from tests.test_api import wait_for
from tests.test_board import sell

playwright = pytest.importorskip("playwright.async_api", reason="playwright is not installed")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DOCS = Path(__file__).resolve().parent.parent / "docs"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason=f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
expect = playwright.expect


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """One headless Chromium per test."""
    pw = await playwright.async_playwright().start()
    b = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    try:
        yield b
    finally:
        await b.close()
        await pw.stop()


async def open_page(browser: Any, h: Harness, path: str, viewport: dict[str, int] = DESKTOP,
                    errors: list[Any] | None = None) -> Any:
    """A fresh page on the board, once its live stream is connected; script errors go to `errors`."""
    page = await browser.new_page(viewport=viewport)
    page.set_default_timeout(10_000)
    if errors is not None:
        page.on("pageerror", lambda err: errors.append(err))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    await page.goto(h.daemon.admin_url + path)
    await expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    return page


async def status_of(h: Harness, channel: str) -> dict[str, Any]:
    """One channel's entry in /status."""
    _, doc = await h.call("GET", "/status")
    found: dict[str, Any] = doc["channels"][channel]
    return found


async def seed(h: Harness) -> None:
    """A month of sales, open orders, an oversell, a drift repair, and a mercadolibre outage."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    await h.count("MUG", 100, (now - timedelta(days=31)).isoformat())  # stock before the month of sales
    n = 0
    for day in range(29, 0, -1):
        for _ in range(rng.randint(0, 3)):
            n += 1
            channel, listing = rng.choice([("amazon", "MUG-A"), ("mercadolibre", "MLM1")])
            await sell(h, channel, f"{channel[:2].upper()}-{4100 + n}", listing, rng.randint(1, 2), state="shipped",
                       created_at=now - timedelta(days=day, hours=rng.randint(0, 12)))
    for sku, qty in (("MUG", 44), ("TEE-S", 1), ("TEE-M", 30), ("BOX", 12)):
        await h.count(sku, qty)
    await sell(h, "amazon", "114-3941689-8772232", "MUG-A", 2, created_at=now - timedelta(minutes=40))
    await sell(h, "mercadolibre", "2000009876543", "MLM1", 1, state="pending", created_at=now - timedelta(minutes=12))
    await sell(h, "amazon", "114-5550101-1234567", "SET-A", 1, created_at=now - timedelta(minutes=5))
    await sell(h, "mercadolibre", "2000009876544", "MLM2", 2, variation_id="V1", created_at=now - timedelta(minutes=3))
    await wait_for(lambda: _settled(h, "mercadolibre"))
    h.channels["mercadolibre"].always = Transient("HTTP 503 from api.mercadolibre.com")
    await h.count("MUG", 40)  # 4 fewer than expected: a drift repair, and pushes mercadolibre cannot take

    async def down() -> bool:
        ml = await status_of(h, "mercadolibre")
        return bool(ml["state"] == "down" and ml["queue_depth"] == 0)

    await wait_for(down)


async def _settled(h: Harness, channel: str) -> bool:
    return bool((await status_of(h, channel))["queue_depth"] == 0)


async def test_board_renders_every_section_on_desktop_and_phone(tmp_path: Path, browser: Any) -> None:
    settings = make_settings(tmp_path, max_attempts=3)
    settings.channels.mercadolibre.down_after_failures = 2
    h = await start_harness(tmp_path, settings=settings)
    try:
        await seed(h)
        DOCS.mkdir(exist_ok=True)
        errors: list[Any] = []
        page = await open_page(browser, h, "/", errors=errors)
        await expect(page.locator('[data-channel="amazon"] [data-role=state]')).to_have_text("✓ OK")
        await expect(page.locator('[data-channel="mercadolibre"] [data-role=state]')).to_have_text("✕ Down")
        await expect(page.locator("#overall")).to_have_text("Degraded: mercadolibre down")
        _, doc = await h.call("GET", "/status")
        assert doc["totals"]["oversells"] == 1  # TEE-S
        for key in ("oversells", "drift_repairs", "outbox_dead", "orders"):
            await expect(page.locator(f'.stat [data-total="{key}"]')).to_have_text(str(doc["totals"][key]))
        await page.screenshot(path=DOCS / "board-overview.png", full_page=True)

        await page.goto(h.daemon.admin_url + "/stock")
        await expect(page.locator("#stock-table tbody tr")).to_have_count(5)
        await expect(page.locator('tr[data-sku="TEE-S"]')).to_contain_text("oversold by 1")
        await expect(page.locator('tr[data-sku="MUG"] [data-col="on_hand"]')).to_contain_text("40")
        await page.screenshot(path=DOCS / "board-stock.png", full_page=True)

        await page.goto(h.daemon.admin_url + "/products/MUG")
        await expect(page.locator("svg.chart rect.bar")).to_have_count(30)
        await expect(page.locator('[data-figure="available"]')).to_have_text("35")  # 40 − 2 − 1 − 2 (a kit)
        await expect(page.locator('[data-figure="cover"]')).not_to_have_text("—")
        await page.screenshot(path=DOCS / "board-product.png", full_page=True)

        await page.goto(h.daemon.admin_url + "/orders")
        await expect(page.locator("tr[data-order]").first).to_contain_text("2000009876544")
        await page.screenshot(path=DOCS / "board-orders.png", full_page=True)

        await page.goto(h.daemon.admin_url + "/alerts")
        await expect(page.locator(".alert.kind-oversell")).to_contain_text("mercadolibre:2000009876544")
        await expect(page.locator(".alert.kind-dead_push").first).to_contain_text("Retry push")
        await page.screenshot(path=DOCS / "board-alerts.png", full_page=True)

        phone = await open_page(browser, h, "/", PHONE)
        await expect(phone.locator('[data-channel="mercadolibre"]')).to_have_attribute("data-state", "down")
        await phone.screenshot(path=DOCS / "board-phone.png", full_page=True)
        assert errors == []  # no script error and no refused resource on any page
    finally:
        await stop_harness(h)


async def test_numbers_update_live_after_a_sale_without_reloading(harness: Harness, browser: Any) -> None:
    await harness.count("MUG", 12)
    page = await open_page(browser, harness, "/stock")
    mug = page.locator('tr[data-sku="MUG"]')
    await expect(mug.locator('[data-col="available"]')).to_have_text("12")
    product = await open_page(browser, harness, "/products/MUG")
    for p in (page, product):
        await p.evaluate("window.__notReloaded = true")
    await sell(harness, "mercadolibre", "LIVE-1", "MLM1", 3)
    await expect(mug.locator('[data-col="committed"]')).to_have_text("3")
    await expect(mug.locator('[data-col="available"]')).to_have_text("9")
    await expect(product.locator('[data-figure="available"]')).to_have_text("9")
    await expect(product.locator(".panel", has_text="Holds")).to_contain_text("LIVE-1")
    for p in (page, product):
        assert await p.evaluate("window.__notReloaded === true")


async def test_channel_outage_turns_its_tile_down_and_back_to_ok(tmp_path: Path, browser: Any) -> None:
    settings = make_settings(tmp_path, max_attempts=10_000)  # keep retrying through the outage
    settings.channels.mercadolibre.down_after_failures = 2
    h = await start_harness(tmp_path, settings=settings)
    try:
        page = await open_page(browser, h, "/")
        tile = page.locator('[data-channel="mercadolibre"]')
        await expect(tile).to_have_attribute("data-state", "ok")
        await page.evaluate("window.__notReloaded = true")
        h.channels["mercadolibre"].always = Transient("down")
        await h.count("MUG", 5)
        await expect(tile).to_have_attribute("data-state", "down")
        await expect(tile.locator("[data-role=state]")).to_have_text("✕ Down")
        await expect(page.locator("#overall")).to_contain_text("mercadolibre down")
        await expect(page.locator('[data-channel="amazon"]')).to_have_attribute("data-state", "ok")
        h.channels["mercadolibre"].always = None
        await expect(tile).to_have_attribute("data-state", "ok")
        await expect(tile.locator("[data-role=state]")).to_have_text("✓ OK")
        await expect(page.locator("#overall")).to_have_text("All channels OK")
        assert await page.evaluate("window.__notReloaded === true")
    finally:
        await stop_harness(h)


async def test_count_form_on_the_board_changes_stock(harness: Harness, browser: Any) -> None:
    page = await open_page(browser, harness, "/products/MUG")
    form = page.locator('form[action="/board/actions/count"]')
    await form.locator('input[name="qty"]').fill("7")
    await form.locator("button").click()
    await expect(page.locator(".flash.ok")).to_have_text("Counted 7 × MUG at main.")
    await expect(page.locator('[data-figure="on_hand"]')).to_have_text("7")
    assert (await harness.product("MUG"))["on_hand"] == 7


async def test_live_refresh_waits_while_a_form_is_being_filled(harness: Harness, browser: Any) -> None:
    await harness.count("MUG", 12)
    page = await open_page(browser, harness, "/products/MUG")
    qty = page.locator('form[action="/board/actions/count"] input[name="qty"]')
    await qty.fill("5")
    await sell(harness, "mercadolibre", "WAIT-1", "MLM1", 2)
    await expect(page.locator("#live-state")).to_have_attribute("data-state", "editing")
    await expect(page.locator('[data-figure="available"]')).to_have_text("12")  # the typed value survives
    assert await qty.input_value() == "5"
    await qty.fill("")
    await page.locator("h1").click()  # move focus off the form
    await expect(page.locator('[data-figure="available"]')).to_have_text("10")


async def test_the_demo_starts_and_its_board_shows_live_sales_and_the_outage(browser: Any) -> None:
    import asyncio
    import os
    import sys

    from tests.test_cli import ROOT, free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syncd", "demo", "--duration", "45", "--port", str(port), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        page = await browser.new_page(viewport=DESKTOP)
        page.set_default_timeout(30_000)
        for _ in range(100):  # the demo takes a moment to start its simulators
            try:
                await page.goto(f"http://127.0.0.1:{port}/")
                break
            except playwright.Error:
                await page.wait_for_timeout(200)
        await expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
        tile = page.locator('[data-channel="mercadolibre"]').first
        await expect(tile).to_have_attribute("data-state", "ok", timeout=15_000)
        # The outage (18 s in, scaled) turns MercadoLibre's tile lagging or down, live, without a reload.
        await expect(tile).to_contain_text(re.compile("Lagging|Down"), timeout=40_000)
        await expect(page.locator('[data-channel="amazon"]').first).to_have_attribute("data-state", "ok")
        await page.screenshot(path=str(DOCS / "demo-outage.png"), full_page=True)
        await page.goto(f"http://127.0.0.1:{port}/orders")
        await expect(page.locator("body")).to_contain_text("amazon")
        await expect(page.locator("body")).to_contain_text("mercadolibre")
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0
