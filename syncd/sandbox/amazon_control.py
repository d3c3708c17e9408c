"""The simulator's control plane under /_sim/ (JSON): seed, sell, move orders, break things, count."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from syncd.sandbox.amazon_market import AmazonMarket, SimError
from syncd.sandbox.amazon_notify import Faults
from syncd.sandbox.amazon_state import SimConfig, iso
from syncd.sandbox.amazon_wire import MARKET
from syncd.sandbox.common import OutageMode

# Knobs /_sim/config may change, with the type each is coerced to.
CONFIG_KNOBS: dict[str, type] = {
    f.name: type(f.default) for f in dataclasses.fields(SimConfig) if f.name != "plans"
}


def _coerce(kind: type, value: Any) -> Any:
    if kind is bool and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return kind(value)


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise SimError("body must be JSON") from None
    if not isinstance(body, dict):
        raise SimError("body must be a JSON object")
    return body


Control = Callable[[AmazonMarket, web.Request], Awaitable[Any]]


def _endpoint(fn: Control, status: int = 200) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        try:
            result = await fn(request.app[MARKET], request)
        except SimError as err:
            return web.json_response({"error": str(err)}, status=err.status)
        except (KeyError, TypeError, ValueError) as err:
            return web.json_response({"error": f"bad request: {err}"}, status=400)
        return web.json_response(result, status=status)

    return handler


async def state(market: AmazonMarket, request: web.Request) -> Any:
    """GET /_sim/state."""
    return market.snapshot()


async def counters(market: AmazonMarket, request: web.Request) -> Any:
    """GET /_sim/counters."""
    return market.counters.as_json()


async def reset_counters(market: AmazonMarket, request: web.Request) -> Any:
    """POST /_sim/counters/reset."""
    for item in dataclasses.fields(market.counters):
        getattr(market.counters, item.name).clear()
    return market.counters.as_json()


async def seed_listings(market: AmazonMarket, request: web.Request) -> Any:
    """POST /_sim/listings {"listings": [{sku, quantity, price, currency?, product_type?, fba?}]}."""
    body = await _json(request)
    seeded = [market.seed_listing(spec) for spec in body.get("listings", [])]
    return {"listings": [lst.sku for lst in seeded]}


async def seed_inventory(market: AmazonMarket, request: web.Request) -> Any:
    """POST /_sim/inventory {"items": [{sku, fulfillable, inbound?, reserved?, unfulfillable?}]}."""
    body = await _json(request)
    items = [market.seed_fba(spec) for spec in body.get("items", [])]
    return {"items": {item.sku: item.to_api(details=True) for item in items}}


async def sale(market: AmazonMarket, request: web.Request) -> Any:
    """POST /_sim/sale {"items": [{sku, qty}], "status"?, "fulfilled_by"?, "order_id"?}."""
    order = market.make_sale(await _json(request))
    return {"order_id": order.order_id, "status": order.status, "last_updated": iso(order.updated)}


async def change_order(market: AmazonMarket, request: web.Request) -> Any:
    """POST /_sim/orders/{order_id} {"action": "pay"|"ship"|"ship_partial"|"cancel"|<status>}."""
    body = await _json(request)
    order = market.change_order(request.match_info["order_id"], str(body["action"]))
    return {"order_id": order.order_id, "status": order.status, "last_updated": iso(order.updated)}


async def outage(market: AmazonMarket, request: web.Request) -> Any:
    """POST /_sim/outage {"mode": "up"|"refuse"|"5xx"|"timeout", "for_seconds"?}.

    Over HTTP, "refuse" needs `for_seconds`: once the socket is closed nothing can reach this
    endpoint to reopen it (in-process callers use `AmazonMarket.set_outage`).
    """
    body = await _json(request)
    mode = OutageMode(body["mode"])
    for_seconds = body.get("for_seconds")
    if mode is OutageMode.REFUSE and not for_seconds:
        raise SimError("mode refuse over HTTP needs for_seconds")
    await market.set_outage(mode, float(for_seconds) if for_seconds else None)
    return {"mode": market.mode.value}


async def faults(market: AmazonMarket, request: web.Request) -> Any:
    """POST /_sim/faults {"loss", "duplicate", "reorder_delay", "seed"}."""
    body = await _json(request)
    chosen = Faults(
        loss=float(body.get("loss", 0.0)),
        duplicate=float(body.get("duplicate", 0.0)),
        reorder_delay=float(body.get("reorder_delay", 0.0)),
        seed=int(body.get("seed", 0)),
    )
    market.notifier.set_faults(chosen)
    return dataclasses.asdict(chosen)


async def configure(market: AmazonMarket, request: web.Request) -> Any:
    """POST /_sim/config {knob: value, ..., "plans": {op: [rate, burst]}}."""
    body = await _json(request)
    for key, value in body.items():
        if key == "plans":
            for op, plan in value.items():
                rate, burst = (plan["rate"], plan["burst"]) if isinstance(plan, dict) else plan
                market.config.plans[op] = (float(rate), float(burst))
            market.buckets.reset()
        elif key in CONFIG_KNOBS:
            setattr(market.config, key, _coerce(CONFIG_KNOBS[key], value))
        else:
            raise SimError(f"unknown knob {key!r}")
    config = dataclasses.asdict(market.config)
    for secret in ("client_secret", "refresh_token", "notify_secret", "aws_secret_access_key"):
        config[secret] = "***"
    return config


async def clock(market: AmazonMarket, request: web.Request) -> Any:
    """POST /_sim/clock {"advance_seconds": N}."""
    body = await _json(request)
    market.clock.advance(float(body["advance_seconds"]))
    return {"now": market.clock.now().isoformat()}


async def expire_tokens(market: AmazonMarket, request: web.Request) -> Any:
    """POST /_sim/tokens/expire: every issued access token is refused from now on."""
    return {"expired": market.tokens.expire_all()}


async def notifications(market: AmazonMarket, request: web.Request) -> Any:
    """GET /_sim/notifications: the most recent published notifications (up to 1000)."""
    return {"notifications": list(market.notifier.published)}


def add_routes(app: web.Application) -> None:
    """Register the control plane."""
    app.router.add_get("/_sim/state", _endpoint(state))
    app.router.add_get("/_sim/counters", _endpoint(counters))
    app.router.add_post("/_sim/counters/reset", _endpoint(reset_counters))
    app.router.add_post("/_sim/listings", _endpoint(seed_listings))
    app.router.add_post("/_sim/inventory", _endpoint(seed_inventory))
    app.router.add_post("/_sim/sale", _endpoint(sale, status=201))
    app.router.add_post("/_sim/orders/{order_id}", _endpoint(change_order))
    app.router.add_post("/_sim/outage", _endpoint(outage))
    app.router.add_post("/_sim/faults", _endpoint(faults))
    app.router.add_post("/_sim/config", _endpoint(configure))
    app.router.add_post("/_sim/clock", _endpoint(clock))
    app.router.add_post("/_sim/tokens/expire", _endpoint(expire_tokens))
    app.router.add_get("/_sim/notifications", _endpoint(notifications))
