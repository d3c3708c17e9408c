"""ShipBob REST calls under the account-wide 150/min sliding window, with typed errors."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import aiohttp
from aiolimiter import AsyncLimiter
from pydantic import BaseModel, ValidationError
from yarl import URL

from syncd.channels.base import AuthExpired, Permanent, RateLimited
from syncd.channels.http import HttpClient, Response
from syncd.channels.threepl.auth import PatAuth
from syncd.channels.threepl.models import InventoryLevel, InventoryLevelPage, Order, ReceivingOrder
from syncd.config import ThreePLSettings

# ShipBob: 150 requests per minute, sliding window, per user per application, across all APIs.
API_LIMIT = 150
API_WINDOW_SECONDS = 60.0
# settings.rate_limits key (requests per second) that overrides the published limit.
RATE_LIMIT_KEY = "api"
# Share of the window's budget the limiter may spend at once; the rest drains evenly.
BURST_SHARE = 0.1
# Headroom for the spread between leaving the limiter and reaching the server.
TIMING_MARGIN = 0.05
MAX_PAGES = 10_000  # a server that keeps handing out `next` links must not loop us forever

ModelT = TypeVar("ModelT", bound=BaseModel)


def window_safe_limiter(limit: float, window: float) -> AsyncLimiter:
    """A leaky bucket that never puts more than `limit` calls into any `window`-second span.

    aiolimiter's AsyncLimiter(150, 60) would let 150 calls through at once and then 2.5/s more,
    i.e. up to 300 in one minute, which a sliding window answers with 429s. A bucket of `burst`
    draining at r/s admits at most burst + r·window calls per window, so r = (limit−burst)/window,
    less a small margin for network jitter.
    """
    burst = max(1.0, math.floor(limit * BURST_SHARE))
    drain = max(limit - burst, 1.0) / (window * (1.0 + TIMING_MARGIN))
    return AsyncLimiter(burst, burst / drain)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


class ThreePLClient:
    """The calls syncd makes to ShipBob; every path is `{api_base}/{api_version}/...`."""

    def __init__(
        self,
        settings: ThreePLSettings,
        session: aiohttp.ClientSession,
        *,
        rate_window_seconds: float = API_WINDOW_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.base_url = f"{settings.api_base.rstrip('/')}/{settings.api_version}"
        # Per-operation stats come from HttpClient; the one limiter is ours because ShipBob's
        # limit is shared by every operation.
        self.http = HttpClient(
            "threepl", self.base_url, session, limits={}, timeout_seconds=settings.request_timeout_seconds
        )
        per_second = settings.rate_limits.get(RATE_LIMIT_KEY, API_LIMIT / API_WINDOW_SECONDS)
        self.window_limit = per_second * rate_window_seconds
        self.limiter = window_safe_limiter(self.window_limit, rate_window_seconds)
        self.auth = PatAuth(settings.api_token)
        self._monotonic = monotonic
        self._wall_clock = wall_clock or (lambda: datetime.now(UTC))
        self._blocked_until = 0.0

    async def get(
        self, op: str, path: str, params: Mapping[str, Any] | None = None, url: str | None = None
    ) -> Response:
        """One GET under the limiter; after a 429, fail fast until its x-retry-after has passed."""
        remaining = self._blocked_until - self._monotonic()
        if remaining > 0:
            raise RateLimited(f"threepl {op}: honouring x-retry-after", retry_after=remaining)
        await self.limiter.acquire()
        try:
            return await self.http.request(op, "GET", path, headers=self.auth.headers(), params=params, url=url)
        except RateLimited as err:
            wait = err.retry_after if err.retry_after is not None else 1.0
            self._blocked_until = max(self._blocked_until, self._monotonic() + wait)
            raise
        except AuthExpired:
            raise self.auth.refused(op) from None

    def response_time(self, response: Response) -> datetime:
        """The server's `Date` (the 3PL's clock, like its shipment times), else our clock."""
        raw = _header(response.headers, "Date")
        if raw:
            try:
                return parsedate_to_datetime(raw).astimezone(UTC)
            except (TypeError, ValueError):
                pass
        return self._wall_clock()

    def _follow(self, link: str) -> str:
        # The next link carries our cursor; sending the bearer token to another host would leak it.
        base = URL(self.base_url)
        target = URL(link)
        if not target.is_absolute():
            return str(base.join(target))
        if target.origin() != base.origin():
            raise Permanent(f"threepl: paging link points to another host ({target.host})")
        return link

    async def inventory_pages(
        self, page_size: int, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[tuple[InventoryLevelPage, datetime]]:
        """Every page of `GET /inventory-level`, following `next` until it is null."""
        query = {"PageSize": str(page_size), **(params or {})}
        url: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            resp = await self.get("inventory-level", "/inventory-level", params=None if url else query, url=url)
            page = _parse(InventoryLevelPage, resp.body, "inventory-level")
            yield page, self.response_time(resp)
            if not page.next:
                return
            url = self._follow(page.next)
            if url in seen:
                raise Permanent("threepl inventory-level: paging loops back to a page already read")
            seen.add(url)
        raise Permanent(f"threepl inventory-level: more than {MAX_PAGES} pages")

    async def inventory_level(self, inventory_id: int) -> InventoryLevel:
        """`GET /inventory-level/{inventoryId}`."""
        resp = await self.get("inventory-level-one", f"/inventory-level/{inventory_id}")
        return _parse(InventoryLevel, resp.body, "inventory-level-one")

    async def orders(self, updated_since: datetime, page: int, limit: int) -> list[Order]:
        """One page of `GET /order` updated since a moment, oldest first so pages do not shift."""
        params = {"LastUpdateStartDate": _iso(updated_since), "SortOrder": "Oldest", "Page": page, "Limit": limit}
        resp = await self.get("order-list", "/order", params=params)
        return _parse_list(Order, resp.body, "order-list")

    async def receiving(self, completed_since: datetime, page: int, limit: int) -> list[ReceivingOrder]:
        """One page of completed WROs (`GET /receiving`) completed since a moment."""
        params = {"Statuses": "Completed", "CompletedStartDate": _iso(completed_since), "Page": page, "Limit": limit}
        resp = await self.get("receiving-list", "/receiving", params=params)
        return _parse_list(ReceivingOrder, resp.body, "receiving-list")


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse(model: type[ModelT], body: Any, op: str) -> ModelT:
    try:
        return model.model_validate(body)
    except ValidationError as err:
        raise Permanent(f"threepl {op}: unexpected response shape ({err.error_count()} errors)") from None


def _parse_list(model: type[ModelT], body: Any, op: str) -> list[ModelT]:
    if not isinstance(body, list):
        raise Permanent(f"threepl {op}: expected a JSON array")
    return [_parse(model, row, op) for row in body]
