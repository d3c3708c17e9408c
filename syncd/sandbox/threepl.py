"""Simulated ShipBob-style 3PL: the REST API syncd polls, signed shipment webhooks, and a /_sim/ control plane.

Standalone: `python -m syncd.sandbox.threepl --port 8793 --notify-url http://127.0.0.1:8780/webhooks/threepl`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from syncd.sandbox.common import CONTROL_PREFIX, OutageMode, SimServer
from syncd.sandbox.threepl_api import STATE_KEY, add_api_routes, api_middleware
from syncd.sandbox.threepl_state import SimError, ThreePLState
from syncd.sandbox.threepl_views import order_view, wro_view

Handler = Callable[[ThreePLState, dict[str, Any]], Awaitable[Any]]
# How long an HTTP-requested "refuse" outage lasts when the request names no duration: the control
# plane shares the closed socket, so only a timer (or an in-process caller) can bring it back.
DEFAULT_REFUSE_SECONDS = 10.0
DEMO_TOKEN = "sandbox-pat"
# A fixed demo secret (base64 of 24 bytes), so a daemon config and the simulator agree out of the box.
DEMO_WEBHOOK_SECRET = "whsec_c3luY2Qtc2FuZGJveC10aHJlZXBsLXNlY3JldA=="


def _lines(body: dict[str, Any], key: str = "lines") -> list[tuple[str, int]]:
    try:
        return [(str(row["sku"]), int(row["qty"])) for row in body.get(key) or []]
    except (KeyError, TypeError, ValueError):
        raise SimError(400, f'{key}: expected [{{"sku": str, "qty": int}}]') from None


async def _seed(state: ThreePLState, body: dict[str, Any]) -> Any:
    items = state.seed(list(body.get("items") or []), replace=bool(body.get("replace", False)))
    return {"items": [i.level() for i in items]}


async def _order(state: ThreePLState, body: dict[str, Any]) -> Any:
    return order_view(state.create_order(str(body.get("reference_id", "")), _lines(body)))


async def _ship(state: ThreePLState, body: dict[str, Any]) -> Any:
    shipment = state.ship(str(body.get("reference_id", "")), _lines(body) or None)
    return {"order_id": shipment.order.id, "shipment_id": shipment.id, "webhook_id": shipment.webhook_id}


async def _cancel(state: ThreePLState, body: dict[str, Any]) -> Any:
    return order_view(state.cancel(str(body.get("reference_id", ""))))


async def _receive(state: ThreePLState, body: dict[str, Any]) -> Any:
    if "wro_id" in body:
        return wro_view(state.complete_wro(int(body["wro_id"])))
    po = body.get("purchase_order_number")
    wro = state.receive(_lines(body), None if po is None else str(po), bool(body.get("complete", True)))
    return wro_view(wro)


async def _adjust(state: ThreePLState, body: dict[str, Any]) -> Any:
    on_hand = body.get("on_hand")
    delta = body.get("delta")
    if (on_hand is None) == (delta is None):
        raise SimError(400, "give exactly one of on_hand, delta")
    item = state.adjust(str(body.get("sku", "")), None if on_hand is None else int(on_hand),
                        None if delta is None else int(delta))
    return item.level()


async def set_mode(state: ThreePLState, mode: OutageMode, seconds: float | None = None) -> None:
    """Switch the outage mode; with `seconds`, switch back to up afterwards."""
    state.mode = mode
    if state.server is not None:
        await state.server.set_mode(mode)
    if seconds is not None and mode is not OutageMode.UP:

        async def restore() -> None:
            await asyncio.sleep(seconds)
            await set_mode(state, OutageMode.UP)

        task = asyncio.get_running_loop().create_task(restore())
        state.background.add(task)
        task.add_done_callback(state.background.discard)


async def _mode(state: ThreePLState, body: dict[str, Any]) -> Any:
    try:
        mode = OutageMode(str(body.get("mode")))
    except ValueError:
        raise SimError(400, f"mode must be one of {[m.value for m in OutageMode]}") from None
    seconds = body.get("seconds")
    if mode is OutageMode.REFUSE:
        refuse_for = float(seconds) if seconds is not None else DEFAULT_REFUSE_SECONDS

        async def later() -> None:
            await asyncio.sleep(0.05)  # let this answer leave before the socket closes
            await set_mode(state, mode, refuse_for)

        task = asyncio.get_running_loop().create_task(later())
        state.background.add(task)
        task.add_done_callback(state.background.discard)
        return {"mode": mode.value, "seconds": refuse_for}
    await set_mode(state, mode, None if seconds is None else float(seconds))
    return {"mode": mode.value, "seconds": seconds}


async def _faults(state: ThreePLState, body: dict[str, Any]) -> Any:
    seed = body.get("seed")
    try:
        state.webhooks.set_faults(
            float(body.get("loss", 0.0)), float(body.get("duplicate", 0.0)),
            float(body.get("reorder_max_delay", 0.0)), None if seed is None else int(seed),
        )
    except ValueError as err:
        raise SimError(400, str(err)) from None
    return state.webhooks.faults.view()


async def _config(state: ThreePLState, body: dict[str, Any]) -> Any:
    if "rate_limit" in body:
        state.rate_limit = int(body["rate_limit"])
    if "rate_window" in body:
        state.rate_window = float(body["rate_window"])
    if "retry_scale" in body:
        state.webhooks.retry_scale = float(body["retry_scale"])
    return {"rate_limit": state.rate_limit, "rate_window": state.rate_window,
            "retry_scale": state.webhooks.retry_scale}


async def _subscribe(state: ThreePLState, body: dict[str, Any]) -> Any:
    try:
        sub = state.webhooks.subscribe(
            str(body["url"]), list(body.get("topics") or ["order.shipped"]), body.get("secret")
        )
    except (KeyError, ValueError) as err:
        raise SimError(400, str(err)) from None
    return sub.view(with_secret=True)


async def _idle(state: ThreePLState, body: dict[str, Any]) -> Any:
    await state.webhooks.idle()
    return {"pending": 0}


async def _state(state: ThreePLState, body: dict[str, Any]) -> Any:
    return state.snapshot()


async def _counters(state: ThreePLState, body: dict[str, Any]) -> Any:
    return dict(state.counters)


def _control(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def route(request: web.Request) -> web.Response:
        state = request.app[STATE_KEY]
        body: dict[str, Any] = {}
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                return web.json_response({"error": "body is not JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        try:
            return web.json_response(await handler(state, body))
        except SimError as err:
            return web.json_response({"error": str(err)}, status=err.status)

    return route


CONTROL_ROUTES: dict[str, tuple[str, Handler]] = {
    "seed": ("POST", _seed),
    "order": ("POST", _order),
    "ship": ("POST", _ship),
    "cancel": ("POST", _cancel),
    "receive": ("POST", _receive),
    "adjust": ("POST", _adjust),
    "mode": ("POST", _mode),
    "faults": ("POST", _faults),
    "config": ("POST", _config),
    "subscribe": ("POST", _subscribe),
    "idle": ("POST", _idle),
    "state": ("GET", _state),
    "counters": ("GET", _counters),
}


def outage_middleware(state: ThreePLState) -> Callable[..., Awaitable[web.StreamResponse]]:
    """common.outage_middleware's modes, except that a "timeout" hang ends when the app shuts down.

    The shared middleware sleeps an hour, so stopping the server waits out aiohttp's 60 s
    shutdown timeout for every hung request; here the hang waits on an event set at shutdown.
    """

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX) or state.mode is OutageMode.UP:
            return await handler(request)
        if state.mode is OutageMode.TIMEOUT:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.stopping.wait(), 3600)
        return web.json_response({"message": "Service Unavailable"}, status=503)

    return middleware


def create_app(state: ThreePLState) -> web.Application:
    """The simulator as an aiohttp app over `state` (tests drive `state` directly too)."""
    app = web.Application(middlewares=[outage_middleware(state), api_middleware(state)])
    app[STATE_KEY] = state
    add_api_routes(app)
    for name, (method, handler) in CONTROL_ROUTES.items():
        app.router.add_route(method, f"/_sim/{name}", _control(handler))

    async def release_hung_requests(_: web.Application) -> None:
        state.stopping.set()

    async def shutdown(_: web.Application) -> None:
        for task in list(state.background):
            task.cancel()
        await state.webhooks.close()

    app.on_shutdown.append(release_hung_requests)
    app.on_cleanup.append(shutdown)
    return app


async def start(state: ThreePLState, host: str = "127.0.0.1", port: int = 0) -> SimServer:
    """Serve `state` on loopback; the returned server's `url` is the API base."""
    server = SimServer(create_app(state), host, port)
    state.server = server
    await server.start()
    return server


def demo_inventory(state: ThreePLState, count: int, seed: int) -> None:
    """Seed `count` items SKU-0001… with reproducible on-hand quantities."""
    rng = random.Random(seed)
    state.seed([{"sku": f"SKU-{n:04d}", "name": f"Demo item {n}", "on_hand": rng.randint(0, 120)}
                for n in range(1, count + 1)])


def main(argv: list[str] | None = None) -> None:
    """Run the simulator standalone until interrupted.

    Example: python -m syncd.sandbox.threepl --port 8793 --notify-url http://127.0.0.1:8780/webhooks/threepl
    """
    parser = argparse.ArgumentParser(prog="python -m syncd.sandbox.threepl", description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8793)
    parser.add_argument("--api-token", default=DEMO_TOKEN, help="the PAT clients must send")
    parser.add_argument("--webhook-secret", default=DEMO_WEBHOOK_SECRET, help="whsec_… for --notify-url")
    parser.add_argument("--notify-url", action="append", default=[], help="subscribe this URL to order.shipped")
    parser.add_argument("--items", type=int, default=20, help="demo inventory items to seed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate-limit", type=int, default=150)
    parser.add_argument("--rate-window", type=float, default=60.0)
    parser.add_argument("--retry-scale", type=float, default=1.0, help="multiplies the retry schedule")
    args = parser.parse_args(argv)

    async def serve() -> None:
        state = ThreePLState(args.api_token, rate_limit=args.rate_limit, rate_window=args.rate_window,
                             seed=args.seed, retry_scale=args.retry_scale)
        demo_inventory(state, args.items, args.seed)
        for url in args.notify_url:
            state.webhooks.subscribe(url, ["order.shipped"], args.webhook_secret)
        server = await start(state, args.host, args.port)
        print(f"3PL simulator on {server.url} (API {server.url}/2026-07/...)", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
