"""The MercadoLibre simulator's `/_sim/` control plane (JSON): seed, sell, break, inspect."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiohttp import web

from syncd.sandbox.common import OutageMode
from syncd.sandbox.mercadolibre_core import OPERATIONS, SimError, iso_z

if TYPE_CHECKING:
    from syncd.sandbox.mercadolibre import MercadoLibreSim

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Background switches of the outage mode, kept referenced until they finish.
_TASKS: web.AppKey[set[asyncio.Task[None]]] = web.AppKey("mercadolibre_sim_control_tasks")


class _BadControl(Exception):
    """A control request the simulator cannot act on."""


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise _BadControl("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _BadControl("body must be a JSON object")
    return body


def _number(body: dict[str, Any], key: str, default: float, low: float = 0.0, high: float | None = None) -> float:
    value = body.get(key, default)
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or value < low
        or (high is not None and value > high)
    ):
        raise _BadControl(f"{key} must be a number in [{low}, {high if high is not None else 'inf'}]")
    return float(value)


def _guard(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except _BadControl as err:
            return web.json_response({"error": "bad_request", "detail": str(err)}, status=400)
        except SimError as err:
            return web.json_response(err.body, status=err.status)
        except (KeyError, TypeError, ValueError) as err:
            return web.json_response({"error": "bad_request", "detail": repr(err)}, status=400)

    return wrapped


def add_control_routes(app: web.Application, sim: MercadoLibreSim) -> None:
    """Register every `/_sim/` route for `sim` on `app`."""
    market, notifier, oauth = sim.market, sim.notifier, sim.oauth

    def item_view(item_id: str) -> dict[str, Any]:
        item = market.get_item(item_id)
        return {
            **item.to_json(sim.config, include_attributes=True),
            "status_log": item.status_log,
            "price_automation": item.price_automation,
        }

    async def state(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "now": iso_z(sim.clock.now()),
                "mode": sim.mode.value,
                "items": [item_view(i) for i in market.items],
                "orders": [o.to_json(sim.config) for o in market.orders.values()],
                "shipments": [s.to_json(sim.config) for s in market.shipments.values()],
                "counters": sim.counters(),
                "notifications": notifier.describe(),
                "oauth": {"current_refresh_token": oauth.current_refresh_token, "refreshes": oauth.refreshes},
            }
        )

    async def seed_items(request: web.Request) -> web.StreamResponse:
        specs = (await _body(request)).get("items")
        if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
            raise _BadControl("items must be a list of objects")
        created = [market.seed_item(spec).id for spec in specs]
        return web.json_response({"items": [item_view(i) for i in created]}, status=201)

    async def get_item(request: web.Request) -> web.StreamResponse:
        return web.json_response(item_view(request.match_info["item_id"]))

    async def sale(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        variation = body.get("variation_id")
        order = market.sale(
            str(body["item_id"]),
            int(variation) if variation is not None else None,
            int(body.get("quantity", 1)),
            str(body.get("status", "paid")),
        )
        return web.json_response(order.to_json(sim.config), status=201)

    async def order_action(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        order = market.order_action(
            int(request.match_info["order_id"]), request.match_info["action"], bool(body.get("restock", True))
        )
        return web.json_response(order.to_json(sim.config))

    async def outage(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        mode = OutageMode(body.get("mode", "up"))
        seconds = _number(body, "seconds", 0.0)
        if mode is OutageMode.REFUSE and (sim.server is None or seconds <= 0):
            # Refusing closes the socket this control plane listens on, so it must end by itself.
            raise _BadControl("refuse needs a SimServer and seconds > 0")

        async def switch() -> None:
            await sim.set_mode(mode)
            if seconds > 0:
                await asyncio.sleep(seconds)
                await sim.set_mode(OutageMode.UP)

        # Switch after this response is written: REFUSE closes the listening socket.
        task = asyncio.get_running_loop().create_task(switch())
        app[_TASKS].add(task)
        task.add_done_callback(app[_TASKS].discard)
        return web.json_response({"mode": mode.value, "seconds": seconds})

    async def set_notifications(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        faults = notifier.faults
        notifier.set_faults(
            replace(
                faults,
                loss_probability=_number(body, "loss_probability", faults.loss_probability, high=1.0),
                duplicate_probability=_number(body, "duplicate_probability", faults.duplicate_probability, high=1.0),
                reorder_delay_seconds=_number(body, "reorder_delay_seconds", faults.reorder_delay_seconds),
                seed=int(body.get("seed", faults.seed)),
            )
        )
        cfg = sim.config
        if "url" in body:
            cfg.notify_url = body["url"] or None
        cfg.notify_timeout_seconds = _number(body, "timeout_seconds", cfg.notify_timeout_seconds)
        cfg.notify_delay_seconds = _number(body, "delay_seconds", cfg.notify_delay_seconds)
        if "retry_delays" in body:
            cfg.retry_delays = tuple(float(d) for d in body["retry_delays"])
        if "topics" in body:
            cfg.topics = tuple(str(t) for t in body["topics"])
        if "disabled_topics" in body:
            notifier.disabled_topics = {str(t) for t in body["disabled_topics"]}
        return web.json_response(notifier.describe())

    async def get_notifications(request: web.Request) -> web.StreamResponse:
        return web.json_response({"settings": notifier.describe(), "log": list(notifier.log)})

    async def drain(request: web.Request) -> web.StreamResponse:
        await notifier.drain(_number(await _body(request), "timeout", 5.0))
        return web.json_response(notifier.describe())

    async def rate_limits(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        limits = body.get("limits", {})
        if not isinstance(limits, dict):
            raise _BadControl("limits must map an operation to {rate, burst}")
        sim.set_rate_limits({op: (float(v["rate"]), float(v["burst"])) for op, v in limits.items()})
        if "plain_text_429" in body:
            sim.plain_text_429 = bool(body["plain_text_429"])
        current = {op: {"rate": r, "burst": b} for op, (r, b) in sim.config.rate_limits.items()}
        return web.json_response(
            {"limits": current, "plain_text_429": sim.plain_text_429, "operations": list(OPERATIONS)}
        )

    async def clock(request: web.Request) -> web.StreamResponse:
        sim.clock.advance(_number(await _body(request), "advance_seconds", 0.0))
        return web.json_response({"now": iso_z(sim.clock.now())})

    async def tokens(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        out: dict[str, Any] = {}
        if "access_ttl_seconds" in body:
            sim.config.access_ttl_seconds = _number(body, "access_ttl_seconds", 0.0, low=0.001)
        if body.get("expire_access_tokens"):
            oauth.expire_access_tokens()
        if body.get("revoke"):
            oauth.revoke()
        if body.get("refresh_token"):
            oauth.install_refresh_token(str(body["refresh_token"]))
        if body.get("issue_code"):
            out["code"] = oauth.issue_code()
        out.update(
            refreshes=oauth.refreshes,
            invalid_grants=oauth.invalid_grants,
            current_refresh_token=oauth.current_refresh_token,
            access_ttl_seconds=sim.config.access_ttl_seconds,
        )
        return web.json_response(out)

    async def faults(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        if "forbidden" in body:
            sim.forbidden = bool(body["forbidden"])
        return web.json_response({"forbidden": sim.forbidden})

    async def counters(request: web.Request) -> web.StreamResponse:
        return web.json_response(sim.counters())

    app[_TASKS] = set()
    routes: list[tuple[str, str, Handler]] = [
        ("GET", "/_sim/state", state),
        ("POST", "/_sim/items", seed_items),
        ("GET", "/_sim/items/{item_id}", get_item),
        ("POST", "/_sim/sale", sale),
        ("POST", "/_sim/orders/{order_id}/{action}", order_action),
        ("POST", "/_sim/outage", outage),
        ("GET", "/_sim/notifications", get_notifications),
        ("POST", "/_sim/notifications", set_notifications),
        ("POST", "/_sim/notifications/drain", drain),
        ("POST", "/_sim/rate_limits", rate_limits),
        ("POST", "/_sim/clock", clock),
        ("POST", "/_sim/tokens", tokens),
        ("POST", "/_sim/faults", faults),
        ("GET", "/_sim/counters", counters),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, _guard(handler))
