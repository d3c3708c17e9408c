"""A faithful MercadoLibre API simulator: OAuth, items, orders, shipments, notifications, 429s.

Run standalone: `python -m syncd.sandbox.mercadolibre --port 8792 --notify-url URL`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from syncd.sandbox.common import OutageMode, SimServer, TokenBucket, outage_middleware
from syncd.sandbox.mercadolibre_control import add_control_routes
from syncd.sandbox.mercadolibre_core import (
    OPERATIONS,
    IdSource,
    SimClock,
    SimConfig,
    SimError,
    api_error,
    parse_iso,
)
from syncd.sandbox.mercadolibre_market import Market
from syncd.sandbox.mercadolibre_notify import Notifier
from syncd.sandbox.mercadolibre_oauth import OAuthState

_ORDER_SORTS = {"date_asc": "Date ascending", "date_desc": "Date descending"}
_MAX_OFFSET = 10_000  # /orders/search offset ceiling reported by integrators
_SCAN_TTL = 300.0  # scroll ids expire after 5 minutes


class MercadoLibreSim:
    """The whole simulated platform; usable in-process (tests, traffic generator) and over HTTP."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.clock = SimClock()
        self.ids = IdSource(self.config.seed, self.config.site_id)
        self.oauth = OAuthState(self.config, self.clock, self.ids)
        self.market = Market(self.config, self.clock, self.ids)
        self.notifier = Notifier(self.config, self.clock, self.ids)
        self.market.emit = self.notifier.emit
        self.mode = OutageMode.UP
        self.server: SimServer | None = None
        self.forbidden = False
        self.plain_text_429 = False
        self.calls: Counter[str] = Counter()
        self.rate_limited: Counter[str] = Counter()
        self.token_uses: Counter[str] = Counter()
        self.buckets: dict[str, TokenBucket] = {}
        self.scrolls: dict[str, tuple[list[str], int, float]] = {}
        self.set_rate_limits(self.config.rate_limits)

    def set_rate_limits(self, limits: dict[str, tuple[float, float]]) -> None:
        """Install (rate per second, burst) token buckets for the given operations."""
        for op, (rate, burst) in limits.items():
            if op not in OPERATIONS:
                raise ValueError(f"unknown operation {op}")
            self.config.rate_limits[op] = (rate, burst)
            self.buckets[op] = TokenBucket(rate, burst)

    def counters(self) -> dict[str, Any]:
        """Calls and 429s per operation, and OAuth counts."""
        return {
            "calls": dict(self.calls),
            "rate_limited": dict(self.rate_limited),
            "refreshes": self.oauth.refreshes,
            "invalid_grants": self.oauth.invalid_grants,
        }

    async def set_mode(self, mode: OutageMode) -> None:
        """Switch the outage mode (REFUSE needs the SimServer that runs this app)."""
        self.mode = mode
        if self.server is not None:
            await self.server.set_mode(mode)


SIM_KEY = web.AppKey("mercadolibre_sim", MercadoLibreSim)


def _error(err: SimError) -> web.Response:
    return web.json_response(err.body, status=err.status)


def _int(request: web.Request, name: str, default: int, minimum: int = 0) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise api_error(400, "bad_request", f"invalid {name}: {raw}")
    return int(raw)


class _Api:
    """The public API routes, closed over one simulator."""

    def __init__(self, sim: MercadoLibreSim) -> None:
        self.sim = sim

    def limit(self, op: str) -> None:
        """Count the call and apply the operation's token bucket; raises the 429 SimError."""
        sim = self.sim
        sim.calls[op] += 1
        bucket = sim.buckets.get(op)
        if bucket is not None and not bucket.take():
            sim.rate_limited[op] += 1
            # JSON shape after Mercado Pago's OAuth reference; no Retry-After (none documented).
            raise SimError(
                429, {"message": "Too Many Requests", "error": "local_rate_limited", "status": 429, "cause": []}
            )

    def gate(self, request: web.Request, op: str, public: bool = False) -> None:
        """Count and rate-limit the call, then check the bearer token; raises SimError."""
        sim = self.sim
        self.limit(op)
        header = request.headers.get("Authorization", "")
        if not header and public:
            return
        token = header[7:] if header.lower().startswith("bearer ") else ""
        if not sim.oauth.access_valid(token):
            # The newer 401 shape (APIS_EVIDENCE §2.4); key on the status code, not the body.
            raise SimError(401, {"code": "unauthorized", "message": "invalid access token"})
        sim.token_uses[token] += 1
        if sim.forbidden:
            raise SimError(
                403,
                {
                    "message": "At least one policy returned UNAUTHORIZED.",
                    "error": "PA_UNAUTHORIZED_RESULT_FROM_POLICIES",
                    "status": 403,
                    "cause": [],
                },
            )

    async def token(self, request: web.Request) -> web.Response:
        """POST /oauth/token (form-encoded body, never the query string)."""
        self.limit("oauth_token")
        if "grant_type" in request.query:
            raise api_error(400, "invalid_request", "parameters must be sent in the request body")
        if not request.content_type.startswith("application/x-www-form-urlencoded"):
            raise api_error(400, "invalid_request", "expected application/x-www-form-urlencoded")
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        return web.json_response(self.sim.oauth.grant(fields))

    def _item_body(self, body: dict[str, Any], attributes: str | None) -> dict[str, Any]:
        if not attributes:
            return body
        keep = {a.strip() for a in attributes.split(",")}
        return {k: v for k, v in body.items() if k in keep}

    async def get_item(self, request: web.Request) -> web.Response:
        """GET /items/{id} (public; `include_attributes=all` adds variation SKUs)."""
        self.gate(request, "items_get", public=True)
        item = self.sim.market.get_item(request.match_info["item_id"])
        body = item.to_json(self.sim.config, request.query.get("include_attributes") == "all")
        return web.json_response(self._item_body(body, request.query.get("attributes")))

    async def multiget(self, request: web.Request) -> web.Response:
        """GET /items?ids=A,B,C: at most 20 ids, one `{code, body}` per id."""
        self.gate(request, "items_multiget", public=True)
        ids = [i for i in request.query.get("ids", "").split(",") if i]
        if not ids:
            raise api_error(400, "bad_request", "ids is required")
        if len(ids) > 20:
            raise api_error(400, "bad_request", "Max 20 ids are allowed")
        include = request.query.get("include_attributes") == "all"
        out: list[dict[str, Any]] = []
        for item_id in ids:
            item = self.sim.market.items.get(item_id)
            if item is None:
                out.append(
                    {
                        "code": 404,
                        "body": {
                            "id": item_id,
                            "error": "resource not found",
                            "message": f"Item with id {item_id} not found",
                        },
                    }
                )
            else:
                body = self._item_body(item.to_json(self.sim.config, include), request.query.get("attributes"))
                out.append({"code": 200, "body": body})
        return web.json_response(out)

    async def put_item(self, request: web.Request) -> web.Response:
        """PUT /items/{id}: quantity, price, status, variations (replacement semantics)."""
        self.gate(request, "items_put")
        try:
            body = await request.json()
        except ValueError:
            raise api_error(400, "bad_request", "body is not valid JSON") from None
        item, warnings = self.sim.market.update_item(request.match_info["item_id"], body)
        out = item.to_json(self.sim.config)
        if warnings:
            out["warnings"] = [{"code": "item.price.ignored", "message": w} for w in warnings]
        return web.json_response(out)

    async def search_items(self, request: web.Request) -> web.Response:
        """GET /users/{id}/items/search: ids only; beyond 1000 results use search_type=scan."""
        self.gate(request, "items_search")
        self._check_seller(request.match_info["user_id"])
        limit = min(_int(request, "limit", 50, 1), 100)
        q = request.query
        if q.get("search_type") == "scan":
            return web.json_response(self._scan(request, limit))
        offset = _int(request, "offset", 0)
        ids = self.sim.market.search_items(
            q.get("status"), q.get("seller_sku") or q.get("sku"), q.get("user_product_id")
        )
        if offset + limit > 1000:
            raise api_error(400, "bad_request", "offset+limit above 1000: use search_type=scan")
        return web.json_response(
            {
                "seller_id": str(self.sim.config.user_id),
                "query": None,
                "paging": {"limit": limit, "offset": offset, "total": len(ids)},
                "results": ids[offset : offset + limit],
                "orders": [{"id": "stop_time_asc", "name": "Order by stop time ascending"}],
                "available_orders": [],
            }
        )

    def _scan(self, request: web.Request, limit: int) -> dict[str, Any]:
        now = asyncio.get_running_loop().time()
        self.sim.scrolls = {k: v for k, v in self.sim.scrolls.items() if v[2] > now}
        scroll_id = request.query.get("scroll_id")
        if scroll_id is None:
            ids = self.sim.market.search_items(request.query.get("status"), None, None)
            scroll_id, position = self.sim.ids.hex(40), 0
        elif scroll_id in self.sim.scrolls:
            ids, position, _ = self.sim.scrolls[scroll_id]
        else:
            raise api_error(400, "bad_request", "invalid or expired scroll_id")
        page = ids[position : position + limit]
        self.sim.scrolls[scroll_id] = (ids, position + len(page), now + _SCAN_TTL)
        return {
            "seller_id": str(self.sim.config.user_id),
            "query": None,
            "paging": {"limit": limit, "total": len(ids)},
            "results": page,
            "scroll_id": scroll_id,
        }

    def _check_seller(self, raw: str) -> None:
        if raw != str(self.sim.config.user_id):
            raise api_error(403, "forbidden", "caller.id does not match the seller")

    async def get_order(self, request: web.Request) -> web.Response:
        """GET /orders/{id}."""
        self.gate(request, "orders_get")
        raw = request.match_info["order_id"]
        if not raw.isdigit():
            raise api_error(400, "bad_request", f"invalid order id {raw}")
        return web.json_response(self.sim.market.get_order(int(raw)).to_json(self.sim.config))

    async def search_orders(self, request: web.Request) -> web.Response:
        """GET /orders/search?seller=...: filters, sort, offset/limit and the real paging object."""
        self.gate(request, "orders_search")
        q = request.query
        self._check_seller(q.get("seller", ""))
        sort = q.get("sort", "date_asc")  # a 2022 capture shows date_asc (and limit 51) by default
        if sort not in _ORDER_SORTS:
            raise api_error(400, "bad_request", f"invalid sort {sort}")
        offset, limit = _int(request, "offset", 0), min(_int(request, "limit", 51, 1), 51)
        if offset > _MAX_OFFSET:
            raise api_error(400, "bad_request", f"offset above {_MAX_OFFSET}")
        try:
            since = parse_iso(q["order.date_last_updated.from"]) if "order.date_last_updated.from" in q else None
            until = parse_iso(q["order.date_last_updated.to"]) if "order.date_last_updated.to" in q else None
        except ValueError:
            raise api_error(400, "bad_request", "invalid date filter") from None
        if since is not None:
            # Date filters are applied at hour granularity.
            since = since.replace(minute=0, second=0, microsecond=0)
        statuses = [s for s in q.get("order.status", "").split(",") if s] or None
        found = self.sim.market.search_orders(statuses, since, until, sort == "date_desc")
        other = next(k for k in _ORDER_SORTS if k != sort)
        return web.json_response(
            {
                "query": q.get("q", ""),
                "results": [o.to_json(self.sim.config) for o in found[offset : offset + limit]],
                "sort": {"id": sort, "name": _ORDER_SORTS[sort]},
                "available_sorts": [{"id": other, "name": _ORDER_SORTS[other]}],
                "filters": [],
                "paging": {"total": len(found), "offset": offset, "limit": limit},
                "display": "complete",
            }
        )

    async def get_shipment(self, request: web.Request) -> web.Response:
        """GET /shipments/{id} (clients send `x-format-new: true`)."""
        self.gate(request, "shipments_get")
        raw = request.match_info["shipment_id"]
        if not raw.isdigit():
            raise api_error(400, "bad_request", f"invalid shipment id {raw}")
        return web.json_response(self.sim.market.get_shipment(int(raw)).to_json(self.sim.config))

    async def up_stock(self, request: web.Request) -> web.Response:
        """GET /user-products/{id}/stock with its `x-version` header."""
        self.gate(request, "user_products_get")
        body, version = self.sim.market.up_stock(request.match_info["up_id"])
        return web.json_response(body, headers={"x-version": str(version)})

    async def missed_feeds(self, request: web.Request) -> web.Response:
        """GET /missed_feeds?app_id=...: delivery history of the last two days."""
        self.gate(request, "missed_feeds")
        q = request.query
        if q.get("app_id") != str(self.sim.config.application_id):
            raise api_error(403, "forbidden", "app_id does not belong to the caller")
        topic = q.get("topic") or None
        if topic == "items" and not q.get("site_id"):
            raise api_error(400, "bad_request", "site_id is required for topic items")
        offset, limit = _int(request, "offset", 0), _int(request, "limit", 10, 1)
        return web.json_response({"messages": self.sim.notifier.missed_feeds(topic, offset, limit)})


def _error_middleware() -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except SimError as err:
            sim = request.app[SIM_KEY]
            if err.status == 429 and sim.plain_text_429:
                return web.Response(text="local_rate_limited", status=429, content_type="text/plain")
            return _error(err)

    return middleware


def create_app(sim: MercadoLibreSim | None = None, config: SimConfig | None = None) -> web.Application:
    """The simulator as an aiohttp app; the same `sim` object stays reachable at `app[SIM_KEY]`."""
    sim = sim or MercadoLibreSim(config)
    app = web.Application(middlewares=[outage_middleware(lambda: sim.mode), _error_middleware()])
    app[SIM_KEY] = sim
    api = _Api(sim)
    app.router.add_post("/oauth/token", api.token)
    app.router.add_get("/items", api.multiget)
    app.router.add_get("/items/{item_id}", api.get_item)
    app.router.add_put("/items/{item_id}", api.put_item)
    app.router.add_get("/users/{user_id}/items/search", api.search_items)
    app.router.add_get("/orders/search", api.search_orders)
    app.router.add_get("/orders/{order_id}", api.get_order)
    app.router.add_get("/shipments/{shipment_id}", api.get_shipment)
    app.router.add_get("/user-products/{up_id}/stock", api.up_stock)
    app.router.add_get("/missed_feeds", api.missed_feeds)
    add_control_routes(app, sim)

    async def close_notifier(_: web.Application) -> None:
        await sim.notifier.close()

    app.on_cleanup.append(close_notifier)
    return app


def main(argv: list[str] | None = None) -> None:
    """Serve the simulator on loopback; prints the app credentials and the first refresh token.

    Example: python -m syncd.sandbox.mercadolibre --port 8792 --notify-url http://127.0.0.1:8780/webhooks/mercadolibre/s3cret
    """
    parser = argparse.ArgumentParser(prog="python -m syncd.sandbox.mercadolibre", description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8792)
    parser.add_argument("--notify-url", default=None, help="the daemon's ML callback URL")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--refresh-token", default=None, help="initial refresh token (default: drawn from seed)")
    parser.add_argument("--client-secret", default="sim-client-secret")
    parser.add_argument("--access-ttl", type=float, default=21600.0, help="access token lifetime, seconds")
    parser.add_argument("--user-id", type=int, default=SimConfig.user_id)
    parser.add_argument("--application-id", type=int, default=SimConfig.application_id)
    parser.add_argument("--client-id", default=SimConfig.client_id)
    args = parser.parse_args(argv)
    config = SimConfig(
        seed=args.seed,
        notify_url=args.notify_url,
        initial_refresh_token=args.refresh_token,
        client_secret=args.client_secret,
        access_ttl_seconds=args.access_ttl,
        user_id=args.user_id,
        application_id=args.application_id,
        client_id=args.client_id,
    )

    async def serve() -> None:
        sim = MercadoLibreSim(config)
        server = SimServer(create_app(sim), args.host, args.port)
        sim.server = server
        await server.start()
        print(
            json.dumps(
                {
                    "url": server.url,
                    "user_id": config.user_id,
                    "application_id": config.application_id,
                    "client_id": config.client_id,
                    "refresh_token": sim.oauth.current_refresh_token,
                }
            ),
            flush=True,
        )
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        return


if __name__ == "__main__":
    main()
