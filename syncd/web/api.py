"""The admin JSON API (DESIGN.md §6), served on the loopback admin listener."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from syncd.service import Service
from syncd.store.apply import Outcome, Result
from syncd.web.errors import error, read_json

SERVICE: web.AppKey[Service] = web.AppKey("service", Service)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReservationIn(_Body):
    """POST /api/reservations."""

    sku: str = Field(min_length=1)
    qty: int = Field(gt=0)
    ttl_seconds: int | None = Field(default=None, gt=0)
    location: str | None = None


class CountIn(_Body):
    """POST /api/stock/counts."""

    sku: str = Field(min_length=1)
    location: str = Field(min_length=1)
    qty: int = Field(ge=0)
    as_of: AwareDatetime | None = None
    source: str = "manual"


class MovementIn(_Body):
    """POST /api/stock/receipts and /api/stock/adjustments."""

    sku: str = Field(min_length=1)
    location: str = Field(min_length=1)
    qty: int
    ref: str = "manual"


class PriceIn(_Body):
    """POST /api/prices."""

    sku: str = Field(min_length=1)
    price: Decimal = Field(gt=0)
    channel: str | None = None


class DlqRetryIn(_Body):
    """POST /api/dlq/retry."""

    listing_id: int | None = None


def _svc(request: web.Request) -> Service:
    return request.app[SERVICE]


def _key(request: web.Request) -> str | None:
    return request.headers.get("Idempotency-Key")


def _result(result: Result, status: int = 200) -> web.Response:
    body: dict[str, Any] = {"outcome": result.outcome.value, **result.data}
    if result.detail:
        body["detail"] = result.detail
    return web.json_response(body, status=status)


async def get_status(request: web.Request) -> web.Response:
    """200 when every channel is ok, 503 otherwise."""
    doc, healthy = await _svc(request).status()
    return web.json_response(doc, status=200 if healthy else 503, dumps=_dumps)


async def list_products(request: web.Request) -> web.Response:
    """Every product with totals."""
    return web.json_response(await _svc(request).reader.products(request.query.get("q", "")), dumps=_dumps)


async def get_product(request: web.Request) -> web.Response:
    """One product with listings and the explain trace."""
    found = await _svc(request).reader.product(request.match_info["sku"])
    if found is None:
        return error(404, f"unknown SKU {request.match_info['sku']!r}")
    return web.json_response(found, dumps=_dumps)


async def list_orders(request: web.Request) -> web.Response:
    """Orders of every channel, newest first; ?channel= and ?state= filter."""
    q = request.query
    limit = int(q.get("limit", "200")) if q.get("limit", "200").isdigit() else 200
    rows = await _svc(request).reader.orders(q.get("channel") or None, q.get("state") or None, limit)
    return web.json_response(rows, dumps=_dumps)


async def create_reservation(request: web.Request) -> web.Response:
    """201 with the hold, or 409 when available < qty."""
    body = ReservationIn.model_validate(await read_json(request))
    held = await _svc(request).reserve(body.sku, body.qty, body.ttl_seconds, body.location)
    return web.json_response(held, status=201)


async def delete_reservation(request: web.Request) -> web.Response:
    """Release a hold."""
    if not await _svc(request).release(request.match_info["id"]):
        return error(404, "no live reservation with that id")
    return web.json_response({"released": request.match_info["id"]})


async def post_count(request: web.Request) -> web.Response:
    """201 when the count is accepted; 409 (kept as a disagreement) when it is refused."""
    body = CountIn.model_validate(await read_json(request))
    result = await _svc(request).count(body.sku, body.location, body.qty, body.as_of, body.source, _key(request))
    if result.outcome is Outcome.IGNORED:
        return error(409, f"count refused: {result.data.get('verdict', result.detail)}", result.data)
    return _result(result, 201)


async def post_receipt(request: web.Request) -> web.Response:
    """Goods received."""
    body = MovementIn.model_validate(await read_json(request))
    if body.qty <= 0:
        return error(400, "invalid request", [{"field": "qty", "problem": "must be positive"}])
    return _result(await _svc(request).receive(body.sku, body.location, body.qty, body.ref, _key(request)), 201)


async def post_adjustment(request: web.Request) -> web.Response:
    """A manual change of on hand (qty is the signed delta, ref the reason)."""
    body = MovementIn.model_validate(await read_json(request))
    if body.qty == 0:
        return error(400, "invalid request", [{"field": "qty", "problem": "must not be 0"}])
    return _result(await _svc(request).adjust(body.sku, body.location, body.qty, body.ref, _key(request)), 201)


async def post_price(request: web.Request) -> web.Response:
    """Set a price."""
    body = PriceIn.model_validate(await read_json(request))
    return _result(await _svc(request).set_price(body.sku, body.price, body.channel, _key(request)))


async def post_listing_state(request: web.Request) -> web.Response:
    """Pause or resume one listing: /api/listings/{channel}/{external_id}/{pause|resume}."""
    action = request.match_info["action"]
    if action not in ("pause", "resume"):
        return error(404, "action must be pause or resume")
    result = await _svc(request).pause(request.match_info["channel"], request.match_info["external_id"],
                                       action == "pause", request.query.get("variation_id") or None, _key(request))
    return _result(result)


async def list_alerts(request: web.Request) -> web.Response:
    """Open alerts (?all=1 for acknowledged too)."""
    return web.json_response(await _svc(request).reader.alerts(request.query.get("all") == "1"), dumps=_dumps)


async def ack_alert(request: web.Request) -> web.Response:
    """Acknowledge an alert."""
    alert_id = request.match_info["id"]
    if not alert_id.isdigit() or not await _svc(request).ack(int(alert_id)):
        return error(404, "no open alert with that id")
    return web.json_response({"acked": int(alert_id)})


async def list_dlq(request: web.Request) -> web.Response:
    """Dead pushes."""
    return web.json_response(await _svc(request).reader.dead_pushes(), dumps=_dumps)


async def retry_dlq(request: web.Request) -> web.Response:
    """Requeue dead pushes (all, or one listing's)."""
    text = await request.text()
    body = DlqRetryIn.model_validate_json(text) if text.strip() else DlqRetryIn()
    return web.json_response({"requeued": await _svc(request).dlq_retry(body.listing_id)})


async def import_catalog(request: web.Request) -> web.Response:
    """Import a catalog CSV (the request body)."""
    return web.json_response(await _svc(request).import_catalog(await request.text()))


async def export_catalog(request: web.Request) -> web.Response:
    """The catalog as CSV."""
    return web.Response(text=await _svc(request).export_catalog(), content_type="text/csv")


def _dumps(obj: Any) -> str:
    import json

    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, Decimal):
            return str(value)
        raise TypeError(f"not JSON serializable: {type(value).__name__}")

    return json.dumps(obj, default=default)


def add_routes(app: web.Application) -> None:
    """Register the JSON API."""
    r = app.router
    r.add_get("/status", get_status)
    r.add_get("/api/products", list_products)
    r.add_get("/api/products/{sku}", get_product)
    r.add_get("/api/orders", list_orders)
    r.add_post("/api/reservations", create_reservation)
    r.add_delete("/api/reservations/{id}", delete_reservation)
    r.add_post("/api/stock/counts", post_count)
    r.add_post("/api/stock/receipts", post_receipt)
    r.add_post("/api/stock/adjustments", post_adjustment)
    r.add_post("/api/prices", post_price)
    r.add_post("/api/listings/{channel}/{external_id}/{action}", post_listing_state)
    r.add_get("/api/alerts", list_alerts)
    r.add_post("/api/alerts/{id}/ack", ack_alert)
    r.add_get("/api/dlq", list_dlq)
    r.add_post("/api/dlq/retry", retry_dlq)
    r.add_post("/api/catalog", import_catalog)
    r.add_get("/api/catalog", export_catalog)
