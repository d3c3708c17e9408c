"""SP-API calls syncd makes, each under its operation's usage plan, with LWA tokens attached."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, ValidationError

from syncd.channels.amazon.auth import LwaAuth, utcnow
from syncd.channels.amazon.models import (
    GetOrderResponse,
    InventorySummariesResponse,
    ItemSearchResults,
    ListingsItem,
    SearchOrdersResponse,
    SubmissionResponse,
)
from syncd.channels.base import AuthExpired, Permanent, RateLimited, TokenStore, Transient
from syncd.channels.http import HttpClient
from syncd.config import AmazonSettings

# Default usage plans (rate requests/s, burst) from Amazon's models, APIS.md §1.4.
USAGE_PLANS: dict[str, tuple[float, float]] = {
    "searchOrders": (0.0056, 20),
    "getOrder": (0.5, 30),
    "getListingsItem": (5.0, 10),
    "patchListingsItem": (5.0, 5),
    "searchListingsItems": (5.0, 5),
    "getInventorySummaries": (2.0, 2),
}

LISTING_DATA = "summaries,attributes,fulfillmentAvailability"
USER_AGENT = "syncd/0.1 (Language=Python)"

M = TypeVar("M", bound=BaseModel)


def limiter_limits(
    plans: Mapping[str, tuple[float, float]], overrides: Mapping[str, float]
) -> dict[str, tuple[float, float]]:
    """aiolimiter (max_rate, period) per operation: a leaky bucket equal to Amazon's token bucket.

    A bucket of `burst` tokens refilled at `rate`/s admits the same calls as a leaky bucket of
    capacity `burst` draining at `rate`/s, i.e. AsyncLimiter(burst, burst / rate). One token of
    the burst is held back: calls leave here on the limiter's schedule but reach Amazon after a
    varying network delay, and the spare token absorbs that jitter (rate × jitter < 1 token).
    `overrides` (settings.rate_limits) replace the rate of an operation, keeping its burst.
    """
    limits: dict[str, tuple[float, float]] = {}
    for op, (rate, burst) in plans.items():
        rate = overrides.get(op, rate)
        if rate <= 0:
            raise ValueError(f"rate limit of {op} must be positive, got {rate}")
        capacity = max(1.0, burst - 1)
        limits[op] = (capacity, capacity / rate)
    return limits


class SpApiClient:
    """Typed calls to Orders 2026-01-01, Listings Items 2021-08-01 and FBA Inventory v1."""

    def __init__(
        self,
        settings: AmazonSettings,
        session: aiohttp.ClientSession,
        tokens: TokenStore | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.rates = {op: settings.rate_limits.get(op, rate) for op, (rate, _) in USAGE_PLANS.items()}
        self.http = HttpClient(
            "amazon",
            settings.api_base,
            session,
            limiter_limits(USAGE_PLANS, settings.rate_limits),
            timeout_seconds=settings.request_timeout_seconds,
            # SP-API answers an expired or invalid access token with 403, never 401.
            auth_statuses=(403,),
        )
        # LWA lives on another host and has no published plan: no limiter for it.
        self.auth = LwaAuth(self.http, settings, tokens, clock)

    async def call(
        self, op: str, method: str, path: str, params: Mapping[str, str] | None = None, json: Any = None
    ) -> Any:
        """One SP-API call; a refused token is refreshed and the call retried exactly once."""
        token = await self.auth.access_token()
        try:
            return await self._send(op, method, path, token, params, json)
        except AuthExpired:
            token = await self.auth.refresh(stale=token)
        return await self._send(op, method, path, token, params, json)

    async def _send(
        self, op: str, method: str, path: str, token: str, params: Mapping[str, str] | None, json: Any
    ) -> Any:
        headers = {"x-amz-access-token": token, "User-Agent": USER_AGENT, "Accept": "application/json"}
        try:
            response = await self.http.request(op, method, path, headers=headers, params=params, json=json)
        except RateLimited as err:
            # Amazon sends no Retry-After: one token of the plan refills in 1/rate seconds.
            hint = err.retry_after if err.retry_after is not None else 1.0 / self.rates[op]
            raise RateLimited(str(err), retry_after=hint) from err
        return response.body

    async def get_model(
        self,
        model: type[M],
        op: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> M:
        """`call`, then validate the body; a body that does not parse is a Transient failure."""
        body = await self.call(op, method, path, params, json)
        try:
            return model.model_validate(body)
        except ValidationError as err:
            raise Transient(f"amazon {op}: unexpected response shape ({err.error_count()} errors)") from None

    def _markets(self) -> str:
        return ",".join(self.settings.marketplace_ids)

    def _listing_path(self, sku: str) -> str:
        if not self.settings.seller_id:
            raise Permanent("amazon: seller_id is not configured")
        return f"/listings/2021-08-01/items/{quote(self.settings.seller_id, safe='')}/{quote(sku, safe='')}"

    async def search_orders(self, params: Mapping[str, str]) -> SearchOrdersResponse:
        """`searchOrders` with the given query (one page)."""
        return await self.get_model(
            SearchOrdersResponse, "searchOrders", "GET", "/orders/2026-01-01/orders", params
        )

    async def get_order(self, order_id: str) -> GetOrderResponse:
        """`getOrder` with fulfillment data (the only dataset that carries the status)."""
        path = f"/orders/2026-01-01/orders/{quote(order_id, safe='')}"
        return await self.get_model(
            GetOrderResponse, "getOrder", "GET", path, {"includedData": "FULFILLMENT"}
        )

    async def get_listing(self, sku: str) -> ListingsItem:
        """`getListingsItem` with summaries, attributes and fulfillment availability."""
        params = {"marketplaceIds": self._markets(), "includedData": LISTING_DATA}
        return await self.get_model(ListingsItem, "getListingsItem", "GET", self._listing_path(sku), params)

    async def patch_listing(
        self, sku: str, product_type: str, patches: list[dict[str, Any]]
    ) -> SubmissionResponse:
        """`patchListingsItem` (offer attributes only; Amazon applies it asynchronously)."""
        params = {"marketplaceIds": self._markets(), "includedData": "issues"}
        body = {"productType": product_type, "patches": patches}
        return await self.get_model(
            SubmissionResponse, "patchListingsItem", "PATCH", self._listing_path(sku), params, body
        )

    async def search_listings(self, params: Mapping[str, str]) -> ItemSearchResults:
        """`searchListingsItems` for this seller (one page)."""
        if not self.settings.seller_id:
            raise Permanent("amazon: seller_id is not configured")
        path = f"/listings/2021-08-01/items/{quote(self.settings.seller_id, safe='')}"
        query = {"marketplaceIds": self._markets(), **params}
        return await self.get_model(ItemSearchResults, "searchListingsItems", "GET", path, query)

    async def inventory_summaries(self, params: Mapping[str, str]) -> InventorySummariesResponse:
        """`getInventorySummaries` for the first configured marketplace (one page)."""
        market = self.settings.marketplace_ids[0]
        query = {
            "granularityType": "Marketplace",
            "granularityId": market,
            "marketplaceIds": market,
            "details": "true",
            **params,
        }
        return await self.get_model(
            InventorySummariesResponse, "getInventorySummaries", "GET", "/fba/inventory/v1/summaries", query
        )
