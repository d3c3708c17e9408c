"""The simulated ShipBob REST surface: PAT auth, the 150/min sliding window, inventory, orders, WROs, webhooks."""

from __future__ import annotations

import base64
import hmac
import json
import math
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web

from syncd.sandbox.common import CONTROL_PREFIX
from syncd.sandbox.threepl_state import InventoryItem, SimError, ThreePLState
from syncd.sandbox.threepl_views import order_view, shipment_view, wro_view

STATE_KEY = web.AppKey("threepl_state", ThreePLState)
VERSION = r"{version:\d{4}-\d{2}}"
DEFAULT_PAGE_SIZE = 50  # PageSize default and maximum are unpublished (APIS_EVIDENCE §4)
MAX_LIMIT = 250  # Get Orders documents Limit 1-250; used for every page-numbered list
LEVEL_FIELDS = frozenset(InventoryItem(0, 0, "", "", 0).level())


def problem(status: int, title: str, detail: str | None, instance: str) -> web.Response:
    """RFC 7807 ProblemDetails, the error body the 2026-01 inventory spec declares."""
    body = {"type": f"https://tools.ietf.org/html/rfc9110#section-15.5.{status - 399}", "title": title,
            "status": status, "detail": detail, "instance": instance}
    return web.json_response(body, status=status, content_type="application/problem+json")


def field_errors(status: int, field: str, message: str) -> web.Response:
    """The `{field: [messages]}` body the orders and receiving endpoints declare for 400/422."""
    return web.json_response({field: [message]}, status=status)


def api_middleware(state: ThreePLState) -> Callable[..., Awaitable[web.StreamResponse]]:
    """PAT bearer check, then the per-user sliding window; counts calls per operation."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), state.api_token.encode()):
            state.counters["401"] += 1
            return problem(401, "Unauthorized", None, request.path)
        route = request.match_info.route
        op = route.name or f"{request.method} {request.path}"
        window = state.window_for(token)
        wait = window.take()
        state.counters[f"calls:{op}"] += 1
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            state.counters["429"] += 1
            state.counters[f"429:{op}"] += 1
            return web.json_response(
                {"statusCode": 429, "message": f"Rate limit is exceeded. Try again in {seconds} seconds."},
                status=429,
                headers={"x-retry-after": str(seconds), "x-remaining-calls": "0"},
            )
        try:
            response = await handler(request)
        except SimError as err:
            response = problem(err.status, "Not Found" if err.status == 404 else "Error", str(err), request.path)
        response.headers["x-remaining-calls"] = str(max(0, window.limit - len(window.hits)))
        # The Date header comes from the simulator's clock, so an injected clock is seen by clients.
        response.headers["Date"] = format_datetime(state.clock().astimezone(UTC), usegmt=True)
        return response

    return middleware


def _bool(raw: str | None) -> bool | None:
    if raw is None:
        return None
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise SimError(400, f"not a boolean: {raw!r}")


def _int(raw: str | None, default: int, low: int, high: int, name: str) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SimError(400, f"{name}: not an integer") from None
    if not low <= value <= high:
        raise SimError(400, f"{name}: must lie in [{low}, {high}]")
    return value


def _when(raw: str | None, name: str) -> datetime | None:
    if raw is None:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise SimError(400, f"{name}: not an ISO 8601 date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ids(raw: str | None, name: str) -> set[int] | None:
    if raw is None:
        return None
    try:
        return {int(part) for part in raw.split(",") if part.strip()}
    except ValueError:
        raise SimError(400, f"{name}: expected comma-separated integers") from None


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def _offset(raw: str | None) -> int:
    if raw is None:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        return max(0, int(data["o"]))
    except (ValueError, KeyError, TypeError):
        raise SimError(400, "Cursor: invalid") from None


def _level_key(name: str) -> Callable[[InventoryItem], Any]:
    return lambda item: item.level()[name]


def _filtered_levels(state: ThreePLState, q: Any) -> list[InventoryItem]:
    items: Iterable[InventoryItem] = state.items.values()
    if (ids := _ids(q.get("InventoryIds"), "InventoryIds")) is not None:
        items = [i for i in items if i.inventory_id in ids]
    if (active := _bool(q.get("IsActive"))) is not None:
        items = [i for i in items if i.active is active]
    if (digital := _bool(q.get("IsDigital"))) is not None:
        items = [i for i in items if i.digital is digital]
    if search := q.get("SearchBy"):
        needle = search.lower()
        items = [
            i for i in items
            if str(i.inventory_id) == search or needle in i.name.lower() or needle in i.sku.lower()
        ]
    result = sorted(items, key=lambda i: i.inventory_id)
    for key in reversed([k for k in (q.get("SortBy") or "").split(",") if k]):
        name = key.lstrip("-")
        if name not in LEVEL_FIELDS:
            raise SimError(400, f"SortBy: unknown field {name!r}")
        result.sort(key=_level_key(name), reverse=key.startswith("-"))
    return result


async def inventory_levels(request: web.Request) -> web.Response:
    """GET /{ver}/inventory-level: cursor pages `{first, prev, next, last, items}` of URLs."""
    state = request.app[STATE_KEY]
    q = request.query
    items = _filtered_levels(state, q)
    size = _int(q.get("PageSize"), DEFAULT_PAGE_SIZE, 1, MAX_LIMIT, "PageSize")
    start = _offset(q.get("Cursor"))
    last_start = max(0, (len(items) - 1) // size * size)

    def link(offset: int) -> str:
        params = {k: v for k, v in q.items() if k != "Cursor"}
        return str(request.url.with_query({**params, "Cursor": _cursor(offset)}))

    return web.json_response({
        "first": link(0) if start > 0 else None,
        "prev": link(max(0, start - size)) if start > 0 else None,
        "next": link(start + size) if start + size < len(items) else None,
        "last": link(last_start) if start < last_start else None,
        "items": [i.level() for i in items[start : start + size]],
    })


async def inventory_level(request: web.Request) -> web.Response:
    """GET /{ver}/inventory-level/{inventoryId}."""
    state = request.app[STATE_KEY]
    try:
        item = state.items.get(int(request.match_info["inventory_id"]))
    except ValueError:
        return problem(400, "Bad Request", "inventoryId must be an integer", request.path)
    if item is None:
        return problem(404, "Not Found", "Inventory not found", request.path)
    return web.json_response(item.level())


def _page(rows: list[Any], q: Any) -> list[Any]:
    page = _int(q.get("Page"), 1, 1, 2_147_483_647, "Page")
    limit = _int(q.get("Limit"), DEFAULT_PAGE_SIZE, 1, MAX_LIMIT, "Limit")
    return rows[(page - 1) * limit : page * limit]


def _between(when: datetime | None, start: datetime | None, end: datetime | None) -> bool:
    if start is None and end is None:
        return True
    if when is None:
        return False
    return (start is None or when >= start) and (end is None or when <= end)


async def list_orders(request: web.Request) -> web.Response:
    """GET /{ver}/order: page-numbered (`Page`, `Limit`), a bare array."""
    state = request.app[STATE_KEY]
    q = request.query
    orders = list(state.orders.values())
    if (ids := _ids(q.get("IDs"), "IDs")) is not None:
        orders = [o for o in orders if o.id in ids]
    if refs := q.get("ReferenceIds"):
        wanted = set(refs.split(","))
        orders = [o for o in orders if o.reference_id in wanted]
    created = (_when(q.get("StartDate"), "StartDate"), _when(q.get("EndDate"), "EndDate"))
    updated = (_when(q.get("LastUpdateStartDate"), "LastUpdateStartDate"),
               _when(q.get("LastUpdateEndDate"), "LastUpdateEndDate"))
    orders = [o for o in orders if _between(o.created, *created) and _between(o.updated, *updated)]
    if (tracked := _bool(q.get("HasTracking"))) is not None:
        orders = [o for o in orders if bool(o.shipments) is tracked]
    orders.sort(key=lambda o: o.id, reverse=q.get("SortOrder", "Newest") == "Newest")
    return web.json_response([order_view(o) for o in _page(orders, q)])


async def create_order(request: web.Request) -> web.Response:
    """POST /{ver}/order: products by `reference_id` (the SKU) with quantities."""
    state = request.app[STATE_KEY]
    try:
        body = await request.json()
        products = [(str(p.get("reference_id") or p["sku"]), int(p["quantity"])) for p in body["products"]]
        reference_id = str(body["reference_id"])
    except (ValueError, KeyError, TypeError):
        return field_errors(400, "body", "reference_id and products[{reference_id, quantity}] are required")
    try:
        order = state.create_order(reference_id, products, body.get("order_number"))
    except SimError as err:
        return field_errors(err.status if err.status in (400, 422) else 422, "products", str(err))
    return web.json_response(order_view(order), status=201)


def _one(request: web.Request, key: str, table: dict[int, Any]) -> Any:
    try:
        found = table.get(int(request.match_info[key]))
    except ValueError:
        found = None
    if found is None:
        raise SimError(404, f"{key} not found")
    return found


async def get_order(request: web.Request) -> web.Response:
    """GET /{ver}/order/{orderId}."""
    state = request.app[STATE_KEY]
    return web.json_response(order_view(_one(request, "order_id", state.orders)))


async def get_shipment(request: web.Request) -> web.Response:
    """GET /{ver}/shipment/{shipmentId}."""
    state = request.app[STATE_KEY]
    return web.json_response(shipment_view(_one(request, "shipment_id", state.shipments)))


async def list_receiving(request: web.Request) -> web.Response:
    """GET /{ver}/receiving: page-numbered WROs, filterable by status and completion date."""
    state = request.app[STATE_KEY]
    q = request.query
    wros = list(state.wros.values())
    if (ids := _ids(q.get("IDs"), "IDs")) is not None:
        wros = [w for w in wros if w.id in ids]
    if statuses := q.get("Statuses"):
        wanted = {s.strip().lower() for s in statuses.split(",")}
        wros = [w for w in wros if w.status.lower() in wanted]
    if pos := q.get("PurchaseOrderNumbers"):
        wros = [w for w in wros if w.purchase_order_number in set(pos.split(","))]
    inserted = (_when(q.get("InsertStartDate"), "InsertStartDate"), _when(q.get("InsertEndDate"), "InsertEndDate"))
    completed = (_when(q.get("CompletedStartDate"), "CompletedStartDate"),
                 _when(q.get("CompletedEndDate"), "CompletedEndDate"))
    wros = [w for w in wros if _between(w.inserted, *inserted) and _between(state.completed_at(w), *completed)]
    wros.sort(key=lambda w: w.id)
    return web.json_response([wro_view(w) for w in _page(wros, q)])


async def get_receiving(request: web.Request) -> web.Response:
    """GET /{ver}/receiving/{id}."""
    state = request.app[STATE_KEY]
    return web.json_response(wro_view(_one(request, "wro_id", state.wros)))


async def create_webhook(request: web.Request) -> web.Response:
    """POST /{ver}/webhook: answers 200 with the secret (the only time it is shown)."""
    state = request.app[STATE_KEY]
    try:
        body = await request.json()
        sub = state.webhooks.subscribe(
            str(body["url"]), list(body["topics"]), body.get("secret"), body.get("description")
        )
    except (ValueError, KeyError, TypeError) as err:
        return field_errors(422, "webhook", str(err) or "url and topics are required")
    return web.json_response(sub.view(with_secret=True))


async def list_webhooks(request: web.Request) -> web.Response:
    """GET /{ver}/webhook: `{items, next, prev}`, never the secrets."""
    state = request.app[STATE_KEY]
    items = [s.view(with_secret=False) for s in state.webhooks.subscriptions.values()]
    return web.json_response({"items": items, "next": None, "prev": None})


async def delete_webhook(request: web.Request) -> web.Response:
    """DELETE /{ver}/webhook/{id}: 204."""
    state = request.app[STATE_KEY]
    if state.webhooks.subscriptions.pop(request.match_info["webhook_id"], None) is None:
        raise SimError(404, "webhook not found")
    return web.Response(status=204)


def add_api_routes(app: web.Application) -> None:
    """Register the versioned API; route names double as the per-operation counter names."""
    routes = [
        ("GET", "/inventory-level", inventory_levels, "inventory-level"),
        ("GET", "/inventory-level/{inventory_id}", inventory_level, "inventory-level-one"),
        ("GET", "/order", list_orders, "order-list"),
        ("POST", "/order", create_order, "order-create"),
        ("GET", "/order/{order_id}", get_order, "order-one"),
        ("GET", "/shipment/{shipment_id}", get_shipment, "shipment-one"),
        ("GET", "/receiving", list_receiving, "receiving-list"),
        ("GET", "/receiving/{wro_id}", get_receiving, "receiving-one"),
        ("POST", "/webhook", create_webhook, "webhook-create"),
        ("GET", "/webhook", list_webhooks, "webhook-list"),
        ("DELETE", "/webhook/{webhook_id}", delete_webhook, "webhook-delete"),
    ]
    for method, path, handler, name in routes:
        app.router.add_route(method, f"/{VERSION}{path}", handler, name=name)
