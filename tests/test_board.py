"""The board over loopback against a real daemon: pages show the store's numbers, forms act, CSRF holds."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from syncd.capture.events import Event, OrderLineIn, OrderUpsert
from syncd.channels.base import Transient
from syncd.domain.models import OrderState
from syncd.store.apply import Result, ingest
from tests.conftest import Harness, make_settings, start_harness, stop_harness
from tests.test_api import wait_for


async def sell(h: Harness, channel: str, order_id: str, external_id: str, qty: int, state: str = "paid",
               variation_id: str | None = None, created_at: datetime | None = None, version: int = 1) -> Result:
    """Ingest a channel order through the daemon's writer, as a poll or webhook would."""
    created = created_at or datetime.now(UTC)
    event = Event(dedupe_key=f"{channel}:order:{order_id}:{version}", source=channel, body=OrderUpsert(
        channel=channel, order_id=order_id, state=OrderState(state), created_at=created,
        last_updated=created + timedelta(seconds=version),
        lines=[OrderLineIn(line_id="1", external_id=external_id, variation_id=variation_id, qty=qty)]))
    service = h.daemon.service
    assert service is not None
    policy = service.policy
    return await h.daemon.writer.submit(lambda tx: ingest(tx, event, policy))


class Client:
    """A cookie-keeping HTTP client for the board (the harness's jar refuses cookies from IP hosts)."""

    def __init__(self, h: Harness) -> None:
        self.base = h.daemon.admin_url
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.base + path) as resp:
            return resp.status, await resp.text()

    async def post(self, path: str, data: dict[str, str], **kw: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.http.post(self.base + path, data=data, allow_redirects=False, **kw) as resp:
            return resp.status, await resp.text(), resp

    async def token(self) -> str:
        """The CSRF token a page's forms carry (the GET also sets the cookie)."""
        status, html = await self.get("/products/MUG")
        assert status == 200
        found = re.search(r'name="csrf" value="([^"]+)"', html)
        assert found
        return found.group(1)


@pytest.fixture
async def client(harness: Harness) -> Any:
    c = Client(harness)
    yield c
    await c.http.close()


def row(html: str, attr: str) -> str:
    """The HTML of the table row or item carrying `attr` (e.g. data-sku="MUG")."""
    start = html.index(attr)
    return html[start:html.index("</tr>", start)]


def cell(html: str, col: str) -> str:
    """The text of a data-col cell, tags stripped."""
    found = re.search(rf'data-col="{col}">(.*?)</td>', html, re.S)
    assert found, col
    return re.sub(r"<[^>]+>", " ", found.group(1)).split()[0]


async def test_every_page_renders(client: Client) -> None:
    for path in ("/", "/stock", "/orders", "/products/MUG", "/products/SET", "/alerts", "/alerts?all=1"):
        status, html = await client.get(path)
        assert status == 200, (path, html)
        assert "<!doctype html>" in html and 'id="live"' in html
    status, html = await client.get("/products/NOPE")
    assert status == 404 and "NOPE" in html


async def test_board_pages_send_a_strict_content_security_policy(client: Client) -> None:
    async with client.http.get(client.base + "/") as resp:
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    status, css = await client.get("/static/board.css")
    assert status == 200 and ".tile.state-down" in css


async def test_stock_shows_a_count_from_the_api(harness: Harness, client: Client) -> None:
    assert (await harness.count("MUG", 12))[0] == 201
    status, html = await client.get("/stock")
    assert status == 200
    mug = row(html, 'data-sku="MUG"')
    assert (cell(mug, "on_hand"), cell(mug, "committed"), cell(mug, "available")) == ("12", "0", "12")


async def test_stock_shows_buffer_holds_and_per_listing_targets(harness: Harness, client: Client) -> None:
    await harness.count("TEE-M", 30)
    await harness.count("TEE-S", 4)
    await sell(harness, "mercadolibre", "O-1", "MLM2", 1, variation_id="V1")
    _, html = await client.get("/stock")
    tee_s = row(html, 'data-sku="TEE-S"')
    assert (cell(tee_s, "committed"), cell(tee_s, "buffer"), cell(tee_s, "available")) == ("1", "1", "2")
    tee_m = row(html, 'data-sku="TEE-M"')
    targets = re.findall(r'data-listing="([^"]+)".*?<span title="target">(\d+)</span>', tee_m, re.S)
    assert dict(targets) == {"amazon:TEE-M": "15", "mercadolibre:MLM2:V2": "5"}  # 50 % share; cap 5


async def test_stock_search_and_filters(harness: Harness, client: Client) -> None:
    await harness.count("TEE-S", 1)
    await sell(harness, "mercadolibre", "O-9", "MLM2", 2, variation_id="V1")  # 1 on hand, 2 committed
    _, html = await client.get("/stock?q=tee")
    assert set(re.findall(r'data-sku="([^"]+)"', html)) == {"TEE-S", "TEE-M"}
    _, html = await client.get("/stock?only=oversold")
    assert re.findall(r'data-sku="([^"]+)"', html) == ["TEE-S"]
    assert "oversold by 1" in html
    _, html = await client.get("/stock?q=nothing-like-this")
    assert "No product matches" in html


async def test_stock_marks_listings_whose_pushed_value_differs_from_target(harness: Harness, client: Client) -> None:
    harness.channels["mercadolibre"].always = Transient("down")
    await harness.count("MUG", 3)
    await wait_for(lambda: _dead(harness, 1))
    _, html = await client.get("/stock?only=mismatch")
    skus = set(re.findall(r'data-sku="([^"]+)"', html))
    assert "MUG" in skus and "BOX" not in skus
    assert 'data-listing="mercadolibre:MLM1"' in html and "≠ mismatch" in html


async def _dead(h: Harness, at_least: int) -> bool:
    service = h.daemon.service
    assert service is not None
    return len(await service.reader.dead_pushes()) >= at_least


async def _ml_all_dead(h: Harness) -> bool:
    """Every mercadolibre push has given up (MLM1 and the kit MLM3 at least)."""
    _, doc = await h.call("GET", "/status")
    ml = doc["channels"]["mercadolibre"]
    return bool(ml["queue_depth"] == 0 and ml["dead"] >= 2)


async def test_orders_lists_every_channel_newest_first_and_filters(harness: Harness, client: Client) -> None:
    await harness.count("MUG", 10)
    now = datetime.now(UTC)
    await sell(harness, "amazon", "A-OLD", "MUG-A", 1, created_at=now - timedelta(hours=2))
    await sell(harness, "mercadolibre", "M-NEW", "MLM1", 2, state="pending", created_at=now - timedelta(minutes=1))
    await sell(harness, "amazon", "A-KIT", "SET-A", 1, state="cancelled", created_at=now - timedelta(hours=1))
    _, html = await client.get("/orders")
    assert re.findall(r'data-order="([^"]+)"', html) == ["mercadolibre:M-NEW", "amazon:A-KIT", "amazon:A-OLD"]
    assert "(in kit SET)" in row(html, 'data-order="amazon:A-KIT"')
    assert 'line-reserved" title="held until payment">reserved<' in row(html, 'data-order="mercadolibre:M-NEW"')
    _, html = await client.get("/orders?channel=amazon")
    assert re.findall(r'data-order="([^"]+)"', html) == ["amazon:A-KIT", "amazon:A-OLD"]
    _, html = await client.get("/orders?state=pending")
    assert re.findall(r'data-order="([^"]+)"', html) == ["mercadolibre:M-NEW"]


async def test_product_page_explains_and_computes_days_of_cover(harness: Harness, client: Client) -> None:
    await harness.count("MUG", 14)
    now = datetime.now(UTC)
    for i, qty in enumerate((3, 4)):  # 7 units in the last 14 days: 0.5 a day
        await sell(harness, "mercadolibre", f"R-{i}", "MLM1", qty, created_at=now - timedelta(days=i + 1))
    await sell(harness, "amazon", "OLD", "MUG-A", 1, created_at=now - timedelta(days=20))  # in the chart only
    await harness.call("POST", "/api/reservations", {"sku": "MUG", "qty": 2})
    _, html = await client.get("/products/MUG")
    figures = dict(re.findall(r'data-figure="(\w+)">([^<]+)<', html))
    # available 14 - 8 committed - 2 reserved = 4; 4 / 0.5 = 8.0 days
    assert figures == {"on_hand": "14", "committed": "8", "reserved": "2", "buffer": "0", "available": "4",
                       "cover": "8.0"}
    assert "8 sold in 30 days" in html and "0.50/day" in html
    assert html.count('<rect class="bar"') == 30
    assert "mercadolibre order <span class=\"mono\">R-1</span>" in html  # a commitment in the trace
    assert "<b>14</b> by manual" in html  # the count and its source
    _, html = await client.get("/products/BOX")
    assert re.search(r'data-figure="cover">—<', html)


async def test_overview_shows_channel_tiles_and_counts(harness: Harness, client: Client) -> None:
    await harness.count("MUG", 12, "2026-01-01T10:00:00Z")
    await harness.count("MUG", 9, "2026-01-01T11:00:00Z")  # drift of -3 opens a drift alert
    _, html = await client.get("/")
    assert re.search(r'data-channel="amazon" data-state="(ok|lagging)"', html)
    assert 'data-channel="mercadolibre"' in html
    assert '<span class="value" data-total="drift_repairs">1</span>' in html
    assert '<span class="value" data-total="oversells">0</span>' in html


async def test_alerts_show_the_orders_behind_an_oversell_and_ack_closes_it(harness: Harness, client: Client) -> None:
    await harness.count("TEE-S", 1)
    await sell(harness, "mercadolibre", "O-77", "MLM2", 2, variation_id="V1")
    _, html = await client.get("/alerts")
    assert "TEE-S oversold by 1" in html and "mercadolibre:O-77" in html
    alert_id = re.search(r'data-alert="(\d+)"', html)
    assert alert_id
    token = await client.token()
    status, _, resp = await client.post("/board/actions/ack", {"csrf": token, "alert_id": alert_id.group(1),
                                                               "next": "/alerts"})
    assert status == 303 and resp.headers["Location"] == "/alerts"
    _, html = await client.get("/alerts")
    assert "acknowledged" in html and "TEE-S oversold by 1" not in html
    _, html = await client.get("/alerts?all=1")
    assert "TEE-S oversold by 1" in html


async def test_count_form_with_the_token_changes_stock(harness: Harness, client: Client) -> None:
    token = await client.token()
    status, _, resp = await client.post("/board/actions/count", {
        "csrf": token, "sku": "MUG", "location": "main", "qty": "5", "idem": "k1", "next": "/products/MUG"})
    assert status == 303 and resp.headers["Location"] == "/products/MUG"
    assert (await harness.product("MUG"))["on_hand"] == 5
    _, html = await client.get("/products/MUG")
    assert "Counted 5 × MUG at main." in html
    _, html = await client.get("/products/MUG")
    assert "Counted 5" not in html  # the flash shows once


async def test_resubmitted_form_acts_once(harness: Harness, client: Client) -> None:
    token = await client.token()
    form = {"csrf": token, "sku": "MUG", "location": "main", "qty": "5", "idem": "same"}
    await client.post("/board/actions/count", form)
    await harness.count("MUG", 7)
    await client.post("/board/actions/count", form)
    assert (await harness.product("MUG"))["on_hand"] == 7
    _, html = await client.get("/")
    assert "Already done" in html


async def test_actions_without_a_matching_token_are_refused(harness: Harness, client: Client) -> None:
    token = await client.token()
    form = {"sku": "MUG", "location": "main", "qty": "5"}
    status, html, _ = await client.post("/board/actions/count", form)
    assert status == 403 and "nothing was changed" in html
    status, _, _ = await client.post("/board/actions/count", {**form, "csrf": "forged"})
    assert status == 403
    bare = aiohttp.ClientSession()  # the right token but no cookie: a forged cross-site form
    try:
        async with bare.post(client.base + "/board/actions/count", data={**form, "csrf": token},
                             allow_redirects=False) as resp:
            assert resp.status == 403
    finally:
        await bare.close()
    status, _, _ = await client.post("/board/actions/count", {**form, "csrf": token},
                                     headers={"Origin": "http://evil.example"})
    assert status == 403
    assert (await harness.product("MUG"))["on_hand"] == 0


async def test_refused_and_invalid_actions_say_why_and_change_nothing(harness: Harness, client: Client) -> None:
    token = await client.token()
    for form, message in [({"sku": "MUG", "location": "main", "qty": "many"}, "qty must be a whole number"),
                          ({"sku": "NOPE", "location": "main", "qty": "1"}, "unknown SKU"),
                          ({"sku": "SET", "location": "main", "qty": "1"}, "is a kit"),
                          ({"sku": "MUG", "location": "main", "qty": "-3"}, "Invalid input")]:
        status, _, resp = await client.post("/board/actions/count", {**form, "csrf": token, "next": "/stock"})
        assert status == 303 and resp.headers["Location"] == "/stock"
        _, html = await client.get("/stock")
        assert 'class="flash error"' in html and message in html, message
    assert (await harness.product("MUG"))["on_hand"] == 0
    status, _, resp = await client.post("/board/actions/price", {"csrf": token, "sku": "MUG", "price": "abc",
                                                                 "next": "https://evil.example/"})
    assert status == 303 and resp.headers["Location"] == "/"  # never redirected off the board
    for target in ("//evil.example/", "/\\evil.example", "/stock\r\nSet-Cookie: x=1"):
        status, _, resp = await client.post("/board/actions/retry", {"csrf": token, "next": target})
        assert status == 303 and resp.headers["Location"] == "/", target


async def test_pause_and_price_forms_go_through_the_service(harness: Harness, client: Client) -> None:
    token = await client.token()
    await client.post("/board/actions/pause", {"csrf": token, "channel": "mercadolibre", "external_id": "MLM1",
                                               "variation_id": "", "paused": "1"})
    await client.post("/board/actions/price", {"csrf": token, "sku": "MUG", "price": "12.50", "channel": ""})
    product = await harness.product("MUG")
    by_listing = {x["external_id"]: x for x in product["listings"]}
    assert by_listing["MLM1"]["paused"] == 1 and by_listing["MUG-A"]["paused"] == 0
    assert product["price"] == "12.50"
    _, html = await client.get("/products/MUG")
    assert ">Resume</button>" in html


async def test_event_stream_sends_a_tick_within_two_seconds(client: Client) -> None:
    async with client.http.get(client.base + "/board/events") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")

        async def first_tick() -> dict[str, Any]:
            event = ""
            async for raw in resp.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "tick":
                    doc: dict[str, Any] = json.loads(line[6:])
                    return doc
            raise AssertionError("stream ended")

        doc = await asyncio.wait_for(first_tick(), 2.0)
    assert set(doc["channels"]) == {"amazon", "mercadolibre"}
    assert {"oversells", "drift_repairs", "reorder_alerts"} <= set(doc["totals"])
    assert isinstance(doc["version"], int)


async def test_dead_push_retry_from_the_board_brings_the_channel_back(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_attempts=3)
    settings.channels.mercadolibre.down_after_failures = 2
    h = await start_harness(tmp_path, settings=settings)
    client = Client(h)
    try:
        ml = h.channels["mercadolibre"]
        ml.always = Transient("down")
        await h.count("MUG", 4)
        await wait_for(lambda: _ml_all_dead(h))
        _, html = await client.get("/")
        assert re.search(r'data-channel="mercadolibre" data-state="down"', html)
        assert "Degraded: mercadolibre down" in html
        ml.always = None
        token = await client.token()
        status, _, _ = await client.post("/board/actions/retry", {"csrf": token, "next": "/alerts"})
        assert status == 303

        async def recovered() -> bool:
            _, page = await client.get("/")
            return bool(re.search(r'data-channel="mercadolibre" data-state="ok"', page))

        await wait_for(recovered)
        assert ml.qty("MLM1") == 4
    finally:
        await client.http.close()
        await stop_harness(h)


async def test_a_lagging_channel_is_never_shown_green(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.channels.amazon.lag_threshold_seconds = 0.3  # polls run hourly here, so data soon goes stale
    h = await start_harness(tmp_path, settings=settings)
    client = Client(h)
    try:
        await asyncio.sleep(0.5)
        _, html = await client.get("/")
        tile = html[html.index('data-channel="amazon"'):html.index("</article>", html.index('data-channel="amazon"'))]
        assert 'data-state="lagging"' in tile and "! Lagging" in tile and "state-ok" not in tile
        assert "Degraded: amazon lagging" in html and 'class="pill bad"' in html
    finally:
        await client.http.close()
        await stop_harness(h)
