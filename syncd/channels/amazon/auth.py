"""Login with Amazon: exchange the seller's long-lived refresh token for 1-hour access tokens."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog
from pydantic import ValidationError

from syncd.channels.amazon.models import LwaToken
from syncd.channels.base import Permanent, TokenRecord, TokenStore
from syncd.channels.http import HttpClient
from syncd.config import AmazonSettings

log = structlog.get_logger(__name__)

CHANNEL = "amazon"
LWA_OP = "lwaToken"


def utcnow() -> datetime:
    """The wall clock in UTC (the default clock; tests inject their own)."""
    return datetime.now(UTC)


class LwaAuth:
    """Holds the current access token and refreshes it before it expires, or when Amazon refuses it.

    SP-API refresh tokens are not rotated on use, so the configured one stays valid; the access
    token is persisted through the TokenStore (when one is given) only so a restart within the
    hour does not need a refresh.
    """

    def __init__(
        self,
        http: HttpClient,
        settings: AmazonSettings,
        tokens: TokenStore | None = None,
        clock: Callable[[], datetime] = utcnow,
        refresh_margin: timedelta = timedelta(minutes=5),
    ) -> None:
        self._http = http
        self._token_url = settings.token_url
        self._client_id = settings.client_id
        self._client_secret = settings.client_secret
        self._refresh_token = settings.refresh_token.get_secret_value()
        self._tokens = tokens
        self._clock = clock
        self._margin = refresh_margin
        self._access: str | None = None
        self._expires_at: datetime | None = None
        self._loaded = tokens is None
        self._lock = asyncio.Lock()
        self.refreshes = 0

    @property
    def expires_at(self) -> datetime | None:
        """When the current access token expires (for /status), or None before the first one."""
        return self._expires_at

    def _fresh(self) -> bool:
        if self._access is None or self._expires_at is None:
            return False
        return self._clock() < self._expires_at - self._margin

    async def access_token(self) -> str:
        """A token valid for at least the refresh margin, refreshing first when needed."""
        if self._fresh():
            assert self._access is not None
            return self._access
        async with self._lock:
            await self._load()
            if self._fresh():
                assert self._access is not None
                return self._access
            return await self._refresh_locked()

    async def refresh(self, stale: str | None) -> str:
        """Replace `stale` after Amazon refused it; concurrent callers share one refresh."""
        async with self._lock:
            if self._access is not None and self._access != stale and self._fresh():
                return self._access
            return await self._refresh_locked()

    def forget(self) -> None:
        """Drop the in-memory access token (on close)."""
        self._access = None
        self._expires_at = None

    async def _load(self) -> None:
        if self._loaded or self._tokens is None:
            return
        self._loaded = True
        record = await self._tokens.load(CHANNEL)
        if record is None:
            return
        if not self._refresh_token:
            self._refresh_token = record.refresh_token
        if record.access_token and record.expires_at is not None:
            self._access, self._expires_at = record.access_token, record.expires_at

    async def _refresh_locked(self) -> str:
        if not (self._refresh_token and self._client_id and self._client_secret.get_secret_value()):
            raise Permanent("amazon: LWA client_id, client_secret and refresh_token must all be set")
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self._refresh_token,
            "client_id": self._client_id,
            "client_secret": self._client_secret.get_secret_value(),
        }
        asked_at = self._clock()
        # aiohttp form-encodes a dict body, which is the only encoding LWA accepts.
        response = await self._http.request(LWA_OP, "POST", "", url=self._token_url, data=form)
        try:
            token = LwaToken.model_validate(response.body)
        except ValidationError:
            raise Permanent("amazon: LWA answered without an access token") from None
        self._access = token.access_token
        # Count the lifetime from before the request, so a slow answer cannot overstate it.
        self._expires_at = asked_at + timedelta(seconds=token.expires_in)
        if token.refresh_token and token.refresh_token != self._refresh_token:
            self._refresh_token = token.refresh_token
        self.refreshes += 1
        log.info("amazon.lwa.refreshed", expires_at=self._expires_at.isoformat())
        if self._tokens is not None:
            record = TokenRecord(
                refresh_token=self._refresh_token, access_token=self._access, expires_at=self._expires_at
            )
            await self._tokens.save(CHANNEL, record)
        return self._access
