"""The seller's board: server-rendered pages, live updates by server-sent events, and form actions."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import aiohttp_jinja2
import jinja2
from aiohttp import web
from pydantic import ValidationError

from syncd.domain.models import LineState, OrderState
from syncd.service import Service
from syncd.store.apply import Outcome, Rejected, Result
from syncd.store.commands import Conflict
from syncd.store.queries import Row
from syncd.store.stockcalc import PUSH_CHANNELS
from syncd.web.api import SERVICE

HERE = Path(__file__).parent
STATIC = HERE / "static"
CSRF_FIELD = "csrf"
TICK_SECONDS = 1.0
SECURITY_HEADERS = {
    # Everything the board needs is served from here; forms may only post back here; no framing.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none';"
                               " form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class BoardState:
    """Per-process board state: the CSRF token, the asset version and the shutdown signal."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    asset_version: str = ""
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


BOARD: web.AppKey[BoardState] = web.AppKey("board", BoardState)
CHANNEL_LABELS = {"amazon": "Amazon", "mercadolibre": "MercadoLibre", "threepl": "3PL"}


# ---- formatting (the JS in static/board.js mirrors ago/dur) --------------------------------------


def dur(seconds: float | None) -> str:
    """A short human duration: 42 s, 5 min, 3 h, 2 d; — for none."""
    if not seconds or seconds < 0:
        return "—"
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} d"


def ago(seconds: float | None) -> str:
    """How long ago, e.g. '3 s ago'."""
    if seconds is None:
        return "never"
    return "just now" if seconds < 0.5 else f"{dur(seconds)} ago"


def since(text: str | None, now: datetime) -> str:
    """How long ago an ISO time was, relative to `now`."""
    return ago((now - datetime.fromisoformat(text)).total_seconds()) if text else "never"


def utc(text: str | None) -> str:
    """An ISO time as 'YYYY-MM-DD HH:MM:SS UTC'."""
    if not text:
        return "—"
    return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _cookie(request: web.Request, base: str) -> str:
    # Cookies ignore ports: two daemons on one host must not overwrite each other's token.
    return f"syncd_{base}_{request.url.port or 0}"


def _svc(request: web.Request) -> Service:
    return request.app[SERVICE]


# ---- rendering -----------------------------------------------------------------------------------


async def _page(request: web.Request, template: str, context: dict[str, Any], status: int = 200) -> web.Response:
    """Render a page with the shared header (health, alert count, CSRF token, flash message)."""
    svc = _svc(request)
    version = svc.writer.stats.batches  # read before the data, so a later commit always triggers a refresh
    doc, healthy = await svc.status()
    state = request.app[BOARD]
    flash_raw = request.cookies.get(_cookie(request, "flash"))
    flash = unquote(flash_raw).split(":", 1) if flash_raw else None
    ctx = {"status": doc, "healthy": healthy, "now": svc.clock(), "csrf": state.token, "version": version,
           "flash": flash if flash and len(flash) == 2 else None, "path": request.path,
           "next": request.path_qs, "asset": state.asset_version, **context}
    resp = aiohttp_jinja2.render_template(template, request, ctx, status=status)
    resp.headers.update(SECURITY_HEADERS)
    resp.set_cookie(_cookie(request, "csrf"), state.token, httponly=True, samesite="Strict", path="/")
    if flash_raw:
        resp.del_cookie(_cookie(request, "flash"), path="/")
    return resp


async def overview(request: web.Request) -> web.Response:
    """Per-channel status tiles and the headline counts."""
    reader = _svc(request).reader
    listings = await reader.listings()
    products = await reader.products()
    return await _page(request, "overview.html", {
        "alerts": (await reader.alerts())[:6],
        "mismatches": sum(1 for row in listings if row["mismatch"]),
        "oversold": sum(1 for p in products if p["oversold_by"] > 0),
    })


async def stock(request: web.Request) -> web.Response:
    """One row per product with pools, holds and per-listing target / pushed / observed."""
    reader = _svc(request).reader
    q, only = request.query.get("q", "").strip(), request.query.get("only", "")
    pools: dict[str, list[Row]] = {}
    for pool in await reader.rows("SELECT * FROM availability ORDER BY sku, location"):
        pools.setdefault(pool["sku"], []).append(pool)
    listings: dict[str, list[Row]] = {}
    for row in await reader.listings():
        listings.setdefault(row["sku"], []).append(row)
    rows = []
    for product in await reader.products(q):
        product["pools"] = pools.get(product["sku"], [])
        product["listings"] = listings.get(product["sku"], [])
        product["mismatch"] = any(x["mismatch"] for x in product["listings"])
        if (only == "mismatch" and not product["mismatch"]) or (only == "oversold" and not product["oversold_by"]):
            continue
        rows.append(product)
    return await _page(request, "stock.html", {"products": rows, "q": q, "only": only})


async def orders(request: web.Request) -> web.Response:
    """Every channel's orders in one list, newest first."""
    svc = _svc(request)
    channel, state = request.query.get("channel") or None, request.query.get("state") or None
    seen = await svc.reader.rows("SELECT DISTINCT channel FROM orders")
    return await _page(request, "orders.html", {
        "orders": await svc.reader.orders(channel, state, 200),
        "channels": sorted(set(svc.channel_names) | {r["channel"] for r in seen}),
        "states": [s.value for s in OrderState], "line_states": [s.value for s in LineState],
        "channel": channel or "", "state": state or "",
    })


async def product(request: web.Request) -> web.Response:
    """One product: figures, the explain trace, listings with their actions, and sales velocity."""
    svc = _svc(request)
    sku = request.match_info["sku"]
    found = await svc.reader.product(sku)
    if found is None:
        return await _page(request, "missing.html", {"sku": sku}, status=404)
    today = svc.clock().astimezone(UTC).date()
    daily = await sales_by_day(svc, found, today)
    avg14 = sum(units for day, units in daily if day > today - timedelta(days=14)) / 14
    dead = {row["listing_id"] for row in await svc.reader.dead_pushes() if row["sku"] == sku}
    return await _page(request, "product.html", {
        "p": found, "chart": sales_chart(daily, avg14), "avg14": avg14,
        "cover": found["available"] / avg14 if avg14 else None, "dead": dead,
        "channels": sorted({x["channel"] for x in found["listings"]}),
        "locations": list(dict.fromkeys([*(x["location"] for x in found["explain"]["pools"]),
                                         *svc.settings.locations])),
    })


async def alerts(request: web.Request) -> web.Response:
    """Open alerts (all with ?all=1) and the dead-letter queue."""
    reader = _svc(request).reader
    show_all = request.query.get("all") == "1"
    return await _page(request, "alerts.html", {
        "alerts": await reader.alerts(show_all), "show_all": show_all, "dead": await reader.dead_pushes()})


# ---- sales velocity ------------------------------------------------------------------------------


async def sales_by_day(svc: Service, product: Row, today: date, days: int = 30) -> list[tuple[date, float]]:
    """Units sold per UTC day over the last `days` days (cancelled lines excluded), oldest first.

    A component counts what kits consumed too; a kit counts kits, read from its first component.
    """
    start = today - timedelta(days=days - 1)
    when = "substr(COALESCE(o.created_at, o.recorded), 1, 10)"
    match, params, per = "l.sku = ?", [product["sku"]], 1
    if product["is_kit"] and product["kit_components"]:
        part = product["kit_components"][0]
        match, params, per = "l.kit_sku = ? AND l.sku = ?", [product["sku"], part["sku"]], int(part["qty"])
    rows = await svc.reader.rows(
        f"SELECT {when} AS day, SUM(l.qty) AS units FROM order_lines l JOIN orders o USING (channel, order_id)"
        f" WHERE {match} AND l.state != 'cancelled' AND {when} >= ? GROUP BY day", (*params, start.isoformat()))
    by_day = {r["day"]: r["units"] / per for r in rows}
    return [(d, by_day.get(d.isoformat(), 0.0)) for d in (start + timedelta(days=i) for i in range(days))]


def sales_chart(daily: list[tuple[date, float]], avg14: float, width: int = 440, height: int = 170) -> Row:
    """Geometry of the inline SVG bar chart (drawn by product.html)."""
    left, right, top, bottom = 34, 8, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([units for _, units in daily] + [avg14, 1.0])
    scale = plot_h / peak
    step = plot_w / len(daily)
    bars = [{"x": round(left + i * step + 1.5, 1), "w": round(max(step - 3, 1), 1),
             "y": round(top + plot_h - units * scale, 1), "h": round(units * scale, 1),
             "title": f"{day.isoformat()}: {units:g} sold"} for i, (day, units) in enumerate(daily)]
    ticks = [{"y": round(top + plot_h - v * scale, 1), "label": f"{v:g}"} for v in (0, round(peak / 2, 1), peak)]
    labels = [{"x": x, "text": daily[i][0].strftime("%b %d"), "anchor": anchor} for i, x, anchor in (
        (0, left, "start"), (len(daily) // 2, round(left + (len(daily) // 2 + 0.5) * step, 1), "middle"),
        (len(daily) - 1, width - right, "end"))]
    return {"width": width, "height": height, "left": left, "right": width - right, "base": top + plot_h,
            "bars": bars, "ticks": ticks, "labels": labels, "total": sum(u for _, u in daily),
            "avg_y": round(top + plot_h - avg14 * scale, 1) if avg14 else None}


# ---- live updates --------------------------------------------------------------------------------


async def live_doc(svc: Service) -> Row:
    """What one server-sent event carries: channel health, totals and the store's change counter."""
    doc, _ = await svc.status()
    keep = ("state", "last_success", "lag_seconds", "queue_depth", "oldest_pending_seconds", "dead",
            "consecutive_failures", "last_error", "unmatched_seconds")
    return {"now": doc["now"], "status": doc["status"], "version": svc.writer.stats.batches,
            "channels": {name: {k: ch[k] for k in keep if k in ch} for name, ch in doc["channels"].items()},
            "totals": doc["totals"]}


async def events(request: web.Request) -> web.StreamResponse:
    """text/event-stream: a `tick` event every second; pages refetch themselves when `version` moves."""
    state = request.app[BOARD]
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    # A dropped connection surfaces as ConnectionResetError on write: the browser went away.
    with contextlib.suppress(ConnectionResetError):
        await resp.write(b"retry: 2000\n\n")
        while not state.stopping.is_set():
            data = json.dumps(await live_doc(_svc(request)), separators=(",", ":"), default=str)
            await resp.write(f"event: tick\ndata: {data}\n\n".encode())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.stopping.wait(), TICK_SECONDS)
    return resp


# ---- actions -------------------------------------------------------------------------------------

Form = Mapping[str, Any]


def _text(form: Form, name: str, required: bool = True) -> str:
    value = form.get(name, "")
    text = value.strip() if isinstance(value, str) else ""
    if required and not text:
        raise ValueError(f"{name} is required")
    return text


def _int(form: Form, name: str) -> int:
    try:
        return int(_text(form, name))
    except ValueError:
        raise ValueError(f"{name} must be a whole number") from None


def _said(result: Result, done: str) -> tuple[bool, str]:
    if result.outcome is Outcome.DUPLICATE:
        return True, "Already done (this form was submitted before)."
    if result.outcome is Outcome.IGNORED:
        return False, f"Refused: {result.data.get('verdict') or result.detail or 'superseded'}."
    return True, done


async def act_count(svc: Service, form: Form) -> tuple[bool, str]:
    """Record a physical count."""
    sku, location, qty = _text(form, "sku"), _text(form, "location"), _int(form, "qty")
    result = await svc.count(sku, location, qty, key=_text(form, "idem", False) or None)
    return _said(result, f"Counted {qty} × {sku} at {location}.")


async def act_pause(svc: Service, form: Form) -> tuple[bool, str]:
    """Pause or resume one listing."""
    channel, external_id, paused = _text(form, "channel"), _text(form, "external_id"), _text(form, "paused") == "1"
    result = await svc.pause(channel, external_id, paused, _text(form, "variation_id", False) or None,
                             _text(form, "idem", False) or None)
    return _said(result, f"{'Paused' if paused else 'Resumed'} {channel} {external_id}.")


async def act_price(svc: Service, form: Form) -> tuple[bool, str]:
    """Set a price everywhere or on one channel."""
    sku, channel = _text(form, "sku"), _text(form, "channel", False) or None
    try:
        price = Decimal(_text(form, "price"))
    except InvalidOperation:
        raise ValueError("price must be a number") from None
    if not price.is_finite() or price <= 0:
        raise ValueError("price must be positive")
    result = await svc.set_price(sku, price, channel, _text(form, "idem", False) or None)
    return _said(result, f"Price of {sku} set to {price} on {channel or 'every channel'}.")


async def act_retry(svc: Service, form: Form) -> tuple[bool, str]:
    """Requeue dead pushes (one listing's, or all)."""
    listing = _text(form, "listing_id", False)
    n = await svc.dlq_retry(int(listing) if listing.isdigit() else None)
    return n > 0, f"Requeued {n} dead push{'' if n == 1 else 'es'}."


async def act_ack(svc: Service, form: Form) -> tuple[bool, str]:
    """Acknowledge an alert."""
    alert_id = _int(form, "alert_id")
    acked = await svc.ack(alert_id)
    return acked, f"Alert {alert_id} {'acknowledged' if acked else 'is not open'}."


ACTIONS: dict[str, Callable[[Service, Form], Awaitable[tuple[bool, str]]]] = {
    "count": act_count, "pause": act_pause, "price": act_price, "retry": act_retry, "ack": act_ack}


def csrf_ok(request: web.Request, form: Form) -> bool:
    """Double submit: the form field must equal both the cookie and this process's token."""
    sent, cookie = form.get(CSRF_FIELD), request.cookies.get(_cookie(request, "csrf"))
    if not isinstance(sent, str) or not cookie:
        return False
    token = request.app[BOARD].token.encode()
    same_cookie = hmac.compare_digest(sent.encode(), cookie.encode())
    return hmac.compare_digest(sent.encode(), token) and same_cookie


def _back(target: Any) -> str:
    # Only a local path, and nothing that could split the header: never redirect off the board.
    if isinstance(target, str) and target.startswith("/") and not target.startswith("//") \
            and "\\" not in target and target.isprintable():
        return target
    return "/"


async def action(request: web.Request) -> web.Response:
    """POST /board/actions/{name}: run a seller action through the service and redirect back (303)."""
    form = await request.post()
    if not csrf_ok(request, form):
        return await _page(request, "forbidden.html", {}, status=403)
    run = ACTIONS.get(request.match_info["name"])
    if run is None:
        raise web.HTTPNotFound(text="unknown action")
    try:
        ok, message = await run(_svc(request), form)
    except (Rejected, Conflict) as err:
        ok, message = False, err.reason
    except ValidationError as err:
        ok, message = False, "Invalid input: " + "; ".join(e["msg"] for e in err.errors())
    except ValueError as err:
        ok, message = False, f"Invalid input: {err}"
    resp = web.Response(status=303, headers={"Location": _back(form.get("next"))})
    resp.set_cookie(_cookie(request, "flash"), quote(f"{'ok' if ok else 'error'}:{message[:300]}"),
                    httponly=True, samesite="Strict", path="/", max_age=60)
    return resp


# ---- wiring --------------------------------------------------------------------------------------


def _asset_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


async def _on_shutdown(app: web.Application) -> None:
    # Open event streams end now, so shutting down does not wait for them.
    app[BOARD].stopping.set()


def add_routes(app: web.Application) -> None:
    """Register the board's pages, its event stream, its actions and its static files."""
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                               undefined=jinja2.StrictUndefined, default_helpers=False)
    env.filters.update(dur=dur, ago=ago, since=since, utc=utc, q=lambda s: quote(str(s), safe=""))
    # A fresh idempotency key per rendered form: submitting the same form twice acts once.
    env.globals.update(nonce=lambda: secrets.token_hex(12), push_channels=PUSH_CHANNELS,
                       channel_label=lambda name: CHANNEL_LABELS.get(name, name))
    app[BOARD] = BoardState(asset_version=_asset_version())
    app.on_shutdown.append(_on_shutdown)
    r = app.router
    r.add_get("/", overview)
    r.add_get("/stock", stock)
    r.add_get("/orders", orders)
    r.add_get("/products/{sku}", product)
    r.add_get("/alerts", alerts)
    r.add_get("/board/events", events)
    r.add_post("/board/actions/{name}", action)
    r.add_static("/static/", STATIC)
