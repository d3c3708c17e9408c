"""Shared HTTP layer: one session, explicit timeouts, per-operation rate limits, typed errors."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import structlog
from aiolimiter import AsyncLimiter

from syncd.channels.base import AuthExpired, Permanent, RateLimited, Transient

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Response:
    """A successful response, read whole (bodies here are small JSON documents)."""

    status: int
    headers: Mapping[str, str]
    body: Any  # parsed JSON, or the text when the body is not JSON


@dataclass
class CallStats:
    """Per-operation call and 429 counts; feeds /metrics and the benches."""

    calls: Counter[str] = field(default_factory=Counter)
    rate_limited: Counter[str] = field(default_factory=Counter)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `Retry-After` (seconds or HTTP date) or ShipBob's `x-retry-after`."""
    for name in ("Retry-After", "x-retry-after"):
        raw = headers.get(name)
        if raw is None:
            continue
        raw = raw.strip()
        with contextlib.suppress(ValueError):
            return max(0.0, float(raw))
        with contextlib.suppress(TypeError, ValueError, IndexError):
            when = parsedate_to_datetime(raw)
            from datetime import UTC, datetime

            return max(0.0, (when - datetime.now(UTC)).total_seconds())
    return None


class HttpClient:
    """Calls one platform's API under its per-operation limiters and translates its failures.

    `limits` maps an operation name to (requests, per seconds). The limiter is waited on before
    each call, so syncd never exceeds a published usage plan even while it retries.
    """

    def __init__(
        self,
        channel: str,
        base_url: str,
        session: aiohttp.ClientSession,
        limits: Mapping[str, tuple[float, float]],
        timeout_seconds: float = 15.0,
        auth_statuses: tuple[int, ...] = (401,),
    ) -> None:
        self.channel = channel
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.limiters = {op: AsyncLimiter(rate, period) for op, (rate, period) in limits.items()}
        self.auth_statuses = auth_statuses
        self.stats = CallStats()

    def limiter(self, op: str) -> AsyncLimiter | None:
        """The limiter of an operation, if it has one."""
        return self.limiters.get(op)

    async def request(
        self,
        op: str,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        url: str | None = None,
    ) -> Response:
        """One call; returns 2xx responses and raises a typed `ChannelError` for anything else."""
        limiter = self.limiters.get(op)
        if limiter is not None:
            await limiter.acquire()
        self.stats.calls[op] += 1
        target = url or f"{self.base_url}{path}"
        try:
            async with self.session.request(
                method, target, headers=headers, params=params, json=json, data=data, timeout=self.timeout
            ) as resp:
                text = await resp.text()
                body: Any = text
                if text and "json" in resp.headers.get("Content-Type", ""):
                    with contextlib.suppress(ValueError):
                        body = await resp.json(content_type=None)
                status, resp_headers = resp.status, dict(resp.headers)
        except TimeoutError as err:
            raise Transient(f"{self.channel} {op}: timed out") from err
        except aiohttp.ClientError as err:
            raise Transient(f"{self.channel} {op}: {type(err).__name__}: {err}") from err
        if 200 <= status < 300:
            return Response(status, resp_headers, body)
        detail = _short(body)
        if status == 429:
            self.stats.rate_limited[op] += 1
            raise RateLimited(f"{self.channel} {op}: 429 {detail}", parse_retry_after(resp_headers))
        if status in self.auth_statuses:
            raise AuthExpired(f"{self.channel} {op}: {status} {detail}")
        if status >= 500 or status == 408:
            raise Transient(f"{self.channel} {op}: {status} {detail}", parse_retry_after(resp_headers))
        raise Permanent(f"{self.channel} {op}: {status} {detail}")


def _short(body: Any, limit: int = 300) -> str:
    text = body if isinstance(body, str) else repr(body)
    return text[:limit]
