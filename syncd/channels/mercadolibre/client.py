"""MercadoLibre HTTP calls: bearer auth, one refresh-and-retry on 401, per-operation rate limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from syncd.channels.base import AuthExpired, Permanent
from syncd.channels.http import HttpClient
from syncd.channels.mercadolibre.auth import MercadoLibreAuth
from syncd.config import MercadoLibreSettings

# Requests per second per operation. ML publishes no numbers (APIS.md §2.7): limits are per
# application and endpoint; the only figures seen are 500 rpm for messaging and a folklore
# 1500 rpm per seller. These defaults keep the sum of a busy minute under ~1500 calls and can be
# raised per operation through `rate_limits` in the config once ML grants more.
DEFAULT_RATE_LIMITS: dict[str, float] = {
    "items_get": 5.0,
    "items_put": 5.0,
    "items_multiget": 2.0,
    "items_search": 1.0,
    "orders_get": 5.0,
    "orders_search": 1.0,
    "shipments_get": 5.0,
    "user_products_get": 2.0,
    "missed_feeds": 1.0,
}


# Held back from each operation's plan. Calls leave on the limiter's schedule but reach ML after a
# varying delay, so ML's bucket can see two calls closer together than they were sent: spare burst
# and a slightly lower rate absorb that jitter (rate x jitter below the spare calls).
RATE_MARGIN = 0.05  # of the rate
BURST_MARGIN = 0.1  # of the burst, and at least one call


def limiter_plan(overrides: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    """aiolimiter (capacity, period) per operation, a margin inside ML's (rate, one second of burst).

    A plan of `rps` is taken as a token bucket refilled at `rps`/s holding one second of calls (at
    least one). The leaky bucket equal to it is AsyncLimiter(burst, burst / rps); this one keeps
    `BURST_MARGIN` of the burst and `RATE_MARGIN` of the rate in reserve.
    """
    plan: dict[str, tuple[float, float]] = {}
    for op, rps in {**DEFAULT_RATE_LIMITS, **overrides}.items():
        if rps <= 0:
            continue
        burst = max(1.0, rps)
        capacity = max(1.0, burst - max(1.0, burst * BURST_MARGIN))
        plan[op] = (capacity, capacity / (rps * (1.0 - RATE_MARGIN)))
    return plan


class MercadoLibreClient:
    """Authorized JSON calls to `api_base`; raises only the typed channel errors."""

    def __init__(self, settings: MercadoLibreSettings, session: aiohttp.ClientSession, auth: MercadoLibreAuth) -> None:
        self.auth = auth
        self.http = HttpClient(
            "mercadolibre",
            settings.api_base,
            session,
            limiter_plan(settings.rate_limits),
            timeout_seconds=settings.request_timeout_seconds,
        )
        self.closed = False

    async def get(
        self, op: str, path: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        """GET and return the parsed JSON body."""
        return await self._call(op, "GET", path, params=params, headers=headers)

    async def put(self, op: str, path: str, body: Any) -> Any:
        """PUT a JSON body and return the parsed JSON answer."""
        return await self._call(op, "PUT", path, json=body)

    async def _call(
        self,
        op: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> Any:
        if self.closed:
            raise Permanent("mercadolibre: channel is closed")
        for attempt in range(2):
            token = await self.auth.token()
            sent = {"Authorization": f"Bearer {token}", "Accept": "application/json", **(headers or {})}
            try:
                response = await self.http.request(op, method, path, headers=sent, params=params, json=json)
            except AuthExpired:
                # An access token can die before its expires_in (revocation, clock skew): refresh once.
                if attempt == 1:
                    raise
                await self.auth.invalidate(token)
                continue
            return response.body
        raise AuthExpired(f"mercadolibre {op}: refused after a refresh")
