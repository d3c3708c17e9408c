"""Orders API 2026-01-01: `searchOrders` and `getOrder`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from syncd.sandbox.amazon_state import FULFILLMENT_STATUSES, SimOrder, iso, parse_iso
from syncd.sandbox.amazon_wire import (
    MARKET,
    BadRequest,
    bad_request,
    included,
    int_param,
    make_token,
    query_hash,
    query_list,
    read_token,
    sp_error,
)

INCLUDED_DATA = (
    "BUYER",
    "RECIPIENT",
    "PROCEEDS",
    "EXPENSE",
    "PROMOTION",
    "CANCELLATION",
    "FULFILLMENT",
    "PACKAGES",
    "TAX",
    "PAYMENT",
    "FULFILLMENT_ORDERS",
)
# Parameters that may change between pages; every other one must be resent unchanged.
PAGE_FREE = ("paginationToken", "maxResultsPerPage", "includedData")


def _time(query: dict[str, str], name: str) -> datetime | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        return parse_iso(raw)
    except ValueError:
        raise BadRequest("Invalid Input", f"{name} must be an ISO 8601 date-time") from None


def _window(query: dict[str, str], now: datetime, lag: float) -> tuple[str, datetime, datetime]:
    """(field, after, before): exactly one of createdAfter / lastUpdatedAfter, rules of the model."""
    created_after, updated_after = _time(query, "createdAfter"), _time(query, "lastUpdatedAfter")
    created_before, updated_before = _time(query, "createdBefore"), _time(query, "lastUpdatedBefore")
    if (created_after is None) == (updated_after is None):
        raise BadRequest("Invalid Input", "Exactly one of createdAfter and lastUpdatedAfter is required.")
    if created_after is not None and (updated_before is not None):
        raise BadRequest("Invalid Input", "lastUpdatedBefore cannot be combined with createdAfter.")
    if updated_after is not None and (created_before is not None):
        raise BadRequest("Invalid Input", "createdBefore cannot be combined with lastUpdatedAfter.")
    after = created_after or updated_after
    assert after is not None
    before = created_before or updated_before
    latest = now - timedelta(minutes=2)
    if before is not None:
        if before < after or before > latest:
            raise BadRequest(
                "Invalid Input",
                "The *Before date must be after the *After date and at least "
                "two minutes before the time of the request.",
            )
    else:
        before = now - timedelta(seconds=lag)
    return ("created" if created_after is not None else "updated"), after, before


def _matches(order: SimOrder, query: dict[str, str]) -> bool:
    statuses = query_list(query, "fulfillmentStatuses")
    markets = query_list(query, "marketplaceIds")
    fulfilled_by = query_list(query, "fulfilledBy")
    return (
        (not statuses or order.status in statuses)
        and (not markets or order.marketplace_id in markets)
        and (not fulfilled_by or order.fulfilled_by in fulfilled_by)
    )


async def search_orders(request: web.Request) -> web.Response:
    """GET /orders/2026-01-01/orders."""
    market = request.app[MARKET]
    query = dict(request.query)
    try:
        datasets = included(query, INCLUDED_DATA, set(), "InvalidInput")
        size = int_param(query, "maxResultsPerPage", 100, 1, 100, "InvalidInput")
        bad = [s for s in query_list(query, "fulfillmentStatuses") if s not in FULFILLMENT_STATUSES]
        if bad:
            raise BadRequest("Invalid Input", f"Unknown fulfillmentStatuses: {', '.join(bad)}")
        now = market.clock.now()
        bound_hash = query_hash(query, PAGE_FREE)
        key: tuple[str, str] | None = None
        token = query.get("paginationToken")
        if token:
            state = read_token(token, "InvalidInput")
            if state.get("q") != bound_hash:
                raise BadRequest(
                    "Invalid Input",
                    "Parameters other than maxResultsPerPage and includedData "
                    "must be the same as in the request that returned the paginationToken.",
                )
            if now.timestamp() - float(state.get("t", 0)) > market.config.orders_token_ttl:
                raise BadRequest("Invalid Input", "The paginationToken has expired.")
            field, after, before = str(state["f"]), parse_iso(state["a"]), parse_iso(state["b"])
            key = (str(state["k"][0]), str(state["k"][1]))
        else:
            field, after, before = _window(query, now, market.config.search_lag)
    except BadRequest as err:
        return bad_request(err)

    def stamp(order: SimOrder) -> datetime:
        return order.created if field == "created" else order.updated

    found = sorted(
        (o for o in market.orders.values() if after <= stamp(o) <= before and _matches(o, query)),
        key=lambda o: (iso(stamp(o)), o.order_id),
    )
    if key is not None:
        found = [o for o in found if (iso(stamp(o)), o.order_id) > key]
    page, more = found[:size], len(found) > size
    body: dict[str, Any] = {"orders": [o.to_api(datasets) for o in page]}
    if more:
        last = page[-1]
        body["pagination"] = {
            "nextToken": make_token(
                {
                    "q": bound_hash,
                    "t": now.timestamp(),
                    "f": field,
                    "a": iso(after),
                    "b": iso(before),
                    "k": [iso(stamp(last)), last.order_id],
                }
            )
        }
    # The echo matches the search: createdAfter searches return createdBefore.
    body["createdBefore" if field == "created" else "lastUpdatedBefore"] = iso(before)
    return web.json_response(body)


async def get_order(request: web.Request) -> web.Response:
    """GET /orders/2026-01-01/orders/{orderId}."""
    market = request.app[MARKET]
    try:
        datasets = included(request.query, INCLUDED_DATA, set(), "InvalidInput")
    except BadRequest as err:
        return bad_request(err)
    order = market.orders.get(request.match_info["orderId"])
    if order is None:
        return sp_error(404, "NotFound", "The requested order was not found.", "")
    return web.json_response({"order": order.to_api(datasets)})


def add_routes(app: web.Application) -> None:
    """Register the Orders operations, named by operationId."""
    app.router.add_get("/orders/2026-01-01/orders", search_orders, name="searchOrders")
    app.router.add_get("/orders/2026-01-01/orders/{orderId}", get_order, name="getOrder")
