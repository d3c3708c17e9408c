"""Listings Items 2021-08-01 (get, patch, search) and FBA Inventory v1 `getInventorySummaries`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from syncd.sandbox import amazon_patch
from syncd.sandbox.amazon_market import AmazonMarket
from syncd.sandbox.amazon_state import Listing, iso, parse_iso
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

ITEM_DATA = (
    "summaries",
    "attributes",
    "issues",
    "offers",
    "fulfillmentAvailability",
    "procurement",
    "relationships",
    "productTypes",
)
LISTINGS_CODE = "BAD_REQUEST"  # the 400 code in the Listings model's sandbox examples
SEARCH_LIMIT = 1000  # searchListingsItems pages through at most this many results


def _markets(market: AmazonMarket, request: web.Request) -> list[str]:
    if request.match_info["sellerId"] != market.config.seller_id:
        raise BadRequest("Invalid input", "sellerId is not the authorized selling partner.", LISTINGS_CODE)
    markets = query_list(request.query, "marketplaceIds")
    if not markets:
        raise BadRequest("Invalid input", "marketplaceIds is required.", LISTINGS_CODE)
    return markets


def _fba_qty(market: AmazonMarket, sku: str) -> int:
    item = market.fba.get(sku)
    return item.fulfillable if item else 0


async def get_listings_item(request: web.Request) -> web.Response:
    """GET /listings/2021-08-01/items/{sellerId}/{sku}."""
    market = request.app[MARKET]
    try:
        markets = _markets(market, request)
        datasets = included(request.query, ITEM_DATA, {"summaries"}, LISTINGS_CODE)
    except BadRequest as err:
        return bad_request(err)
    sku = request.match_info["sku"]
    listing = market.listings.get(sku)
    if listing is None:
        return sp_error(404, "NOT_FOUND", f"SKU '{sku}' not found in marketplace {markets[0]}", "")
    return web.json_response(listing.to_api(datasets, markets, _fba_qty(market, sku)))


async def patch_listings_item(request: web.Request) -> web.Response:
    """PATCH /listings/2021-08-01/items/{sellerId}/{sku}: 200 ACCEPTED / INVALID / VALID."""
    market = request.app[MARKET]
    try:
        _markets(market, request)
        datasets = included(request.query, ("identifiers", "issues"), {"issues"}, LISTINGS_CODE)
        mode = request.query.get("mode")
        if mode not in (None, "VALIDATION_PREVIEW"):
            raise BadRequest("Invalid input", "mode must be VALIDATION_PREVIEW.", LISTINGS_CODE)
        try:
            body = await request.json()
        except ValueError:
            raise BadRequest("Invalid input", "Request body is not JSON.", LISTINGS_CODE) from None
        problem = amazon_patch.request_problem(body)
        if problem:
            raise BadRequest("Invalid input", problem, LISTINGS_CODE)
    except BadRequest as err:
        return bad_request(err)
    sku = request.match_info["sku"]
    result = market.submit_patch(sku, body["productType"], body["patches"], preview=mode is not None)
    reply: dict[str, Any] = {"sku": sku, "status": result.status, "submissionId": result.submission_id}
    if "issues" in datasets:
        reply["issues"] = result.issues
    if "identifiers" in datasets:
        listing = market.listings.get(sku)
        reply["identifiers"] = (
            [{"marketplaceId": market.config.marketplace_id, "asin": listing.asin}] if listing else []
        )
    return web.json_response(reply)


def _when(query: Any, name: str) -> datetime | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        return parse_iso(raw)
    except ValueError:
        raise BadRequest("Invalid input", f"{name} must be an ISO 8601 date-time.", LISTINGS_CODE) from None


def _search_filter(query: Any) -> Any:
    ids, id_type = query_list(query, "identifiers"), query.get("identifiersType")
    if bool(ids) != bool(id_type):
        raise BadRequest("Invalid input", "identifiers and identifiersType go together.", LISTINGS_CODE)
    if id_type not in (None, "SKU", "ASIN"):
        raise BadRequest("Invalid input", f"identifiersType {id_type} is not simulated.", LISTINGS_CODE)
    bounds = {
        name: _when(query, name)
        for name in ("createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore")
    }

    def keep(listing: Listing) -> bool:
        if ids and (listing.sku if id_type == "SKU" else listing.asin) not in ids:
            return False
        checks = (
            (bounds["createdAfter"], listing.created, 1),
            (bounds["createdBefore"], listing.created, -1),
            (bounds["lastUpdatedAfter"], listing.updated, 1),
            (bounds["lastUpdatedBefore"], listing.updated, -1),
        )
        return all(b is None or (v >= b if sign > 0 else v <= b) for b, v, sign in checks)

    return keep


async def search_listings_items(request: web.Request) -> web.Response:
    """GET /listings/2021-08-01/items/{sellerId}."""
    market = request.app[MARKET]
    query = request.query
    try:
        markets = _markets(market, request)
        datasets = included(query, ITEM_DATA, {"summaries"}, LISTINGS_CODE)
        size = int_param(query, "pageSize", 10, 1, 20, LISTINGS_CODE)
        sort_by, order = query.get("sortBy", "lastUpdatedDate"), query.get("sortOrder", "DESC")
        if sort_by not in ("sku", "createdDate", "lastUpdatedDate") or order not in ("ASC", "DESC"):
            raise BadRequest("Invalid input", "sortBy or sortOrder is not valid.", LISTINGS_CODE)
        keep = _search_filter(query)
        bound = query_hash(query, ("pageToken", "pageSize", "includedData"))
        offset = 0
        if query.get("pageToken"):
            state = read_token(query["pageToken"], LISTINGS_CODE)
            if state.get("q") != bound:
                raise BadRequest("Invalid input", "pageToken does not match the search.", LISTINGS_CODE)
            offset = int(state.get("o", 0))
    except BadRequest as err:
        return bad_request(err)

    def sort_key(listing: Listing) -> tuple[str, str]:
        stamp = {
            "sku": listing.sku,
            "createdDate": iso(listing.created),
            "lastUpdatedDate": iso(listing.updated),
        }
        return stamp[sort_by], listing.sku

    found = sorted(
        (lst for lst in market.listings.values() if keep(lst)), key=sort_key, reverse=order == "DESC"
    )
    found = found[:SEARCH_LIMIT]
    page = found[offset : offset + size]
    body: dict[str, Any] = {"numberOfResults": len(found)}
    pagination = {}
    if offset + size < len(found):
        pagination["nextToken"] = make_token({"q": bound, "o": offset + size})
    if offset > 0:
        pagination["previousToken"] = make_token({"q": bound, "o": max(0, offset - size)})
    if pagination:
        body["pagination"] = pagination
    body["items"] = [lst.to_api(datasets, markets, _fba_qty(market, lst.sku)) for lst in page]
    return web.json_response(body)


async def get_inventory_summaries(request: web.Request) -> web.Response:
    """GET /fba/inventory/v1/summaries (`payload` wrapper; nextToken lives 30 s)."""
    market = request.app[MARKET]
    query = request.query
    now = market.clock.now()
    try:
        if query.get("granularityType") != "Marketplace" or not query.get("granularityId"):
            raise BadRequest("Invalid Input", "granularityType=Marketplace and granularityId are required.")
        markets = query_list(query, "marketplaceIds")
        if len(markets) != 1:
            raise BadRequest("Invalid Input", "Exactly one marketplaceId is required.")
        start = _when(query, "startDateTime")
        bound = query_hash(query, ("nextToken",))
        offset = 0
        if query.get("nextToken"):
            state = read_token(query["nextToken"], "InvalidInput")
            if state.get("q") != bound:
                raise BadRequest("Invalid Input", "nextToken does not match the other parameters.")
            if now.timestamp() - float(state.get("t", 0)) > market.config.fba_token_ttl:
                raise BadRequest("Invalid Input", "The nextToken has expired.")
            offset = int(state.get("o", 0))
    except BadRequest as err:
        err.code = "InvalidInput" if err.code == LISTINGS_CODE else err.code
        return bad_request(err)
    skus = query_list(query, "sellerSkus") or query_list(query, "sellerSku")
    items = sorted(market.fba.values(), key=lambda i: i.sku)
    if start is not None:  # with startDateTime, the SKU filters are ignored
        items = [i for i in items if i.updated >= start]
    elif skus:
        items = [i for i in items if i.sku in skus]
    size = market.config.fba_page_size
    page = items[offset : offset + size]
    details = query.get("details", "false").lower() == "true"
    body: dict[str, Any] = {
        "payload": {
            "granularity": {"granularityType": "Marketplace", "granularityId": query["granularityId"]},
            "inventorySummaries": [i.to_api(details) for i in page],
        }
    }
    if offset + size < len(items):
        body["pagination"] = {"nextToken": make_token({"q": bound, "o": offset + size, "t": now.timestamp()})}
    return web.json_response(body)


def add_routes(app: web.Application) -> None:
    """Register the Listings and FBA Inventory operations, named by operationId."""
    item = "/listings/2021-08-01/items/{sellerId}/{sku}"
    app.router.add_get(item, get_listings_item, name="getListingsItem")
    app.router.add_patch(item, patch_listings_item, name="patchListingsItem")
    app.router.add_get(
        "/listings/2021-08-01/items/{sellerId}", search_listings_items, name="searchListingsItems"
    )
    app.router.add_get("/fba/inventory/v1/summaries", get_inventory_summaries, name="getInventorySummaries")
