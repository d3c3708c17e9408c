"""The simulator's responses, headers and notifications, and the adapter's patch bodies, checked
against Amazon's own published models (selling-partner-api-models, Apache-2.0).

Objects are validated strictly: a property the model does not declare is an error, so a misspelt
field in the simulator fails here instead of passing silently through `additionalProperties`.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest

from syncd.channels.amazon import AmazonChannel
from syncd.channels.amazon.models import ListingsItem
from syncd.config import AmazonSettings
from syncd.sandbox.amazon import AmazonSimulator, SimConfig


def _models_dir() -> Path | None:
    candidates = [
        os.environ.get("SYNCD_SPAPI_MODELS", ""),
        str(Path(__file__).resolve().parents[1] / "data" / "amazon-sp-api"),
        "/work/shared/reference/amazon-sp-api",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "models" / "orders_2026-01-01.json").is_file():
            return Path(candidate)
    return None


MODELS = _models_dir()
pytestmark = pytest.mark.skipif(MODELS is None, reason="Amazon's models not found (set SYNCD_SPAPI_MODELS)")


def _strict(schema: Any) -> Any:
    """Forbid undeclared properties wherever the model lists properties and says nothing else."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items() if not (k == "$id" and str(v).startswith("#"))}
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@cache
def _model(name: str) -> dict[str, Any]:
    assert MODELS is not None
    return json.loads((MODELS / "models" / name).read_text())


def check_definition(model: str, definition: str, body: Any) -> None:
    """Validate `body` against `#/definitions/<definition>` of a Swagger 2.0 model."""
    schema = {
        "$ref": f"#/definitions/{definition}",
        "definitions": _strict(copy.deepcopy(_model(model)["definitions"])),
    }
    jsonschema.Draft4Validator(schema).validate(body)


def check_response(model: str, path: str, method: str, status: int, body: Any, headers: Any) -> None:
    """Validate a response body against the operation's declared schema, and its headers' presence."""
    declared = _model(model)["paths"][path][method]["responses"][str(status)]
    ref = declared["schema"]["$ref"].rsplit("/", 1)[-1]
    check_definition(model, ref, body)
    names = {name.lower() for name in declared.get("headers", {})}
    assert "x-amzn-requestid" in names and "x-amzn-RequestId" in headers
    assert ("x-amzn-ratelimit-limit" in names) == ("x-amzn-RateLimit-Limit" in headers), (path, status)


def check_notification(schema_file: str, note: dict[str, Any]) -> None:
    """Validate a notification against Amazon's JSON schema for its type.

    ListingsItemStatusChangeNotification.json's enum says LISTINGS_ITEM_STATUS_CHANGED while its
    own example and the Notifications API docs say LISTINGS_ITEM_STATUS_CHANGE; the names the
    schema's examples use are accepted beside its enum.
    """
    assert MODELS is not None
    schema = _strict(json.loads((MODELS / "notifications" / schema_file).read_text()))
    kind = schema["properties"]["NotificationType"]
    if "enum" in kind:
        kind["enum"] = sorted({*kind["enum"], *(e["NotificationType"] for e in schema.get("examples", []))})
    jsonschema.Draft7Validator(schema).validate(note)


ORDERS = "orders_2026-01-01.json"
LISTINGS = "listingsItems_2021-08-01.json"
FBA = "fbaInventory.json"
ITEM_PATH = "/listings/2021-08-01/items/{sellerId}/{sku}"


@pytest.fixture
async def sim() -> AsyncIterator[AmazonSimulator]:
    config = SimConfig(consistency_delay=0.0, search_lag=0.0)
    config.plans["getInventorySummaries"] = (2.0, 5)  # burst 2 would throttle this test's third call
    async with AmazonSimulator(config) as running:
        market = running.market
        market.seed_listing({"sku": "MUG", "quantity": 9, "price": "9.90", "product_type": "DRINKING_CUP"})
        market.seed_listing({"sku": "KETTLE", "fba": True, "price": "59.00"})
        market.seed_fba({"sku": "KETTLE", "fulfillable": 5, "inbound": 2})
        yield running


@pytest.fixture
async def api(sim: AmazonSimulator) -> AsyncIterator[Any]:
    async with aiohttp.ClientSession() as session:
        amazon = AmazonChannel(AmazonSettings(**sim.client_settings()), session)
        token = await amazon.client.auth.access_token()

        async def call(method: str, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
            headers = {"x-amz-access-token": kwargs.pop("token", token)}
            async with session.request(method, sim.url + path, headers=headers, **kwargs) as resp:
                return resp.status, await resp.json(), resp.headers

        call.amazon = amazon  # type: ignore[attr-defined]
        yield call


async def test_search_orders_and_get_order_match_the_orders_model(sim, api) -> None:
    order = sim.market.make_sale({"items": [{"sku": "MUG", "qty": 2}]})
    sim.market.make_sale({"items": [{"sku": "KETTLE", "qty": 1}], "fulfilled_by": "AMAZON"})
    sim.market.change_order(order.order_id, "ship_partial")
    for included in ("FULFILLMENT", "BUYER"):
        query = {
            "lastUpdatedAfter": "2020-01-01T00:00:00Z",
            "includedData": included,
            "maxResultsPerPage": "1",
        }
        status, body, headers = await api("GET", "/orders/2026-01-01/orders", params=query)
        assert status == 200 and body["orders"] and body["pagination"]["nextToken"]
        check_response(ORDERS, "/orders/2026-01-01/orders", "get", 200, body, headers)
    status, body, headers = await api(
        "GET", f"/orders/2026-01-01/orders/{order.order_id}", params={"includedData": "FULFILLMENT"}
    )
    check_response(ORDERS, "/orders/2026-01-01/orders/{orderId}", "get", status, body, headers)
    assert body["order"]["fulfillment"]["fulfillmentStatus"] == "PARTIALLY_SHIPPED"


async def test_orders_errors_match_the_orders_model(sim, api) -> None:
    status, body, headers = await api("GET", "/orders/2026-01-01/orders", params={})
    check_response(ORDERS, "/orders/2026-01-01/orders", "get", status, body, headers)
    status, body, headers = await api("GET", "/orders/2026-01-01/orders/000-0000000-0000000")
    check_response(ORDERS, "/orders/2026-01-01/orders/{orderId}", "get", status, body, headers)
    status, body, headers = await api("GET", "/orders/2026-01-01/orders/x", token="Atza|forged")
    assert status == 403
    check_response(ORDERS, "/orders/2026-01-01/orders/{orderId}", "get", status, body, headers)
    sim.market.config.plans["getOrder"] = (0.001, 1)
    sim.market.buckets.reset()
    await api("GET", "/orders/2026-01-01/orders/x")
    status, body, headers = await api("GET", "/orders/2026-01-01/orders/x")
    assert status == 429
    check_response(ORDERS, "/orders/2026-01-01/orders/{orderId}", "get", status, body, headers)


async def test_listings_responses_match_the_listings_model(sim, api) -> None:
    seller = sim.market.config.seller_id
    every = "summaries,attributes,issues,offers,fulfillmentAvailability"
    for sku in ("MUG", "KETTLE"):
        status, body, headers = await api(
            "GET",
            f"/listings/2021-08-01/items/{seller}/{sku}",
            params={"marketplaceIds": "ATVPDKIKX0DER", "includedData": every},
        )
        check_response(LISTINGS, ITEM_PATH, "get", status, body, headers)
    status, body, headers = await api(
        "GET", f"/listings/2021-08-01/items/{seller}/NOPE", params={"marketplaceIds": "ATVPDKIKX0DER"}
    )
    assert status == 404
    check_response(LISTINGS, ITEM_PATH, "get", status, body, headers)
    status, body, headers = await api(
        "GET",
        f"/listings/2021-08-01/items/{seller}",
        params={"marketplaceIds": "ATVPDKIKX0DER", "includedData": every, "pageSize": "1"},
    )
    assert body["numberOfResults"] == 2 and "nextToken" in body["pagination"]
    check_response(LISTINGS, "/listings/2021-08-01/items/{sellerId}", "get", status, body, headers)


async def test_patch_requests_and_answers_match_the_listings_model(sim, api) -> None:
    seller = sim.market.config.seller_id
    amazon: AmazonChannel = api.amazon
    item = ListingsItem.model_validate({"sku": "MUG"})
    request = {
        "productType": "DRINKING_CUP",
        "patches": [amazon._quantity_patch(4), amazon._price_patch(item, 12)],
    }
    check_definition(LISTINGS, "ListingsItemPatchRequest", request)
    params = {"marketplaceIds": "ATVPDKIKX0DER", "includedData": "issues,identifiers"}
    for sku, expected in (("MUG", "ACCEPTED"), ("NOPE", "INVALID")):
        status, body, headers = await api(
            "PATCH", f"/listings/2021-08-01/items/{seller}/{sku}", params=params, json=request
        )
        assert body["status"] == expected
        check_response(LISTINGS, ITEM_PATH, "patch", status, body, headers)
    status, body, headers = await api(
        "PATCH", f"/listings/2021-08-01/items/{seller}/MUG", params=params, json={"patches": []}
    )
    assert status == 400
    check_response(LISTINGS, ITEM_PATH, "patch", status, body, headers)


async def test_inventory_summaries_match_the_fba_model(sim, api) -> None:
    query = {
        "granularityType": "Marketplace",
        "granularityId": "ATVPDKIKX0DER",
        "marketplaceIds": "ATVPDKIKX0DER",
    }
    for details in ("true", "false"):
        status, body, headers = await api(
            "GET", "/fba/inventory/v1/summaries", params={**query, "details": details}
        )
        check_response(FBA, "/fba/inventory/v1/summaries", "get", status, body, headers)
    status, body, headers = await api(
        "GET", "/fba/inventory/v1/summaries", params={"granularityType": "Marketplace"}
    )
    assert status == 400
    check_response(FBA, "/fba/inventory/v1/summaries", "get", status, body, headers)


async def test_notifications_match_amazons_notification_schemas(sim) -> None:
    market = sim.market
    order = market.make_sale({"items": [{"sku": "MUG", "qty": 2}], "status": "PENDING"})
    market.change_order(order.order_id, "pay")
    market.change_order(order.order_id, "ship_partial")
    market.change_order(order.order_id, "cancel")
    rest = market.listings["MUG"].mfn_quantity()
    market.make_sale({"items": [{"sku": "MUG", "qty": rest}]})  # sold out: no longer BUYABLE
    kinds = {
        "ORDER_CHANGE": "OrderChangeNotification.json",
        "LISTINGS_ITEM_MFN_QUANTITY_CHANGE": "ListingsItemMfnQuantityChange.json",
        "LISTINGS_ITEM_STATUS_CHANGE": "ListingsItemStatusChangeNotification.json",
    }
    published = list(market.notifier.published)
    assert {n["NotificationType"] for n in published} == set(kinds)
    for note in published:
        check_notification(kinds[note["NotificationType"]], note)


def test_strict_validation_catches_an_undeclared_field() -> None:
    body = {"errors": [{"code": "QuotaExceeded", "message": "m", "detail": "misspelt"}]}
    with pytest.raises(jsonschema.ValidationError):
        check_definition(ORDERS, "ErrorList", body)
