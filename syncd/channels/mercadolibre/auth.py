"""MercadoLibre OAuth: single-use refresh tokens, rotated on every refresh and saved before use.

Each refresh returns a new refresh token and kills the old one at once. Two concurrent refreshes
would leave one caller with `invalid_grant`, and a new refresh token that is lost (not stored)
disconnects the seller. So refreshes run one at a time under a lock, and the new record is committed
through `TokenStore.save()` before its access token is handed to anyone: after a crash, the next
process loads a refresh token that still works.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import structlog
from pydantic import ValidationError

from syncd.channels.base import AuthExpired, Permanent, RateLimited, TokenRecord, TokenStore, Transient
from syncd.channels.http import parse_retry_after
from syncd.channels.mercadolibre.models import TokenResponse
from syncd.config import MercadoLibreSettings

log = structlog.get_logger(__name__)

CHANNEL = "mercadolibre"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _InvalidGrant(Exception):
    """The refresh token was refused (used already, expired or revoked)."""


class MercadoLibreAuth:
    """Hands out a valid access token, refreshing (serialized, save-first) when needed."""

    def __init__(
        self,
        settings: MercadoLibreSettings,
        session: aiohttp.ClientSession,
        tokens: TokenStore,
        clock: Callable[[], datetime] = _utcnow,
        refresh_margin_seconds: float = 300.0,
    ) -> None:
        self.settings = settings
        self.session = session
        self.tokens = tokens
        self.clock = clock
        self.margin = timedelta(seconds=refresh_margin_seconds)
        self.timeout = aiohttp.ClientTimeout(total=settings.request_timeout_seconds)
        self.refreshes = 0
        self._lock = asyncio.Lock()
        self._record: TokenRecord | None = None
        self._loaded = False
        # A refreshed record whose save failed: kept so its refresh token is not lost, never used unsaved.
        self._unsaved: TokenRecord | None = None

    @property
    def expires_at(self) -> datetime | None:
        """When the current access token expires (for /status)."""
        return self._record.expires_at if self._record else None

    async def token(self) -> str:
        """A valid access token; refreshes at most once for any number of concurrent callers."""
        async with self._lock:
            await self._load()
            await self._flush()
            record = self._record
            if record is not None and self._fresh(record):
                assert record.access_token is not None
                return record.access_token
            record = await self._refresh()
            assert record.access_token is not None
            return record.access_token

    def _fresh(self, record: TokenRecord) -> bool:
        """True while the record's access token has more than the margin left."""
        return (
            bool(record.access_token)
            and record.expires_at is not None
            and self.clock() < record.expires_at - self.margin
        )

    async def invalidate(self, access_token: str) -> None:
        """The API refused `access_token` (401): forget it so the next `token()` refreshes.

        Callers that raced on the same dead token find it already replaced and just retry.
        """
        async with self._lock:
            if self._record is not None and self._record.access_token == access_token:
                self._record = TokenRecord(refresh_token=self._record.refresh_token)

    async def _load(self) -> None:
        if self._loaded:
            return
        stored = await self.tokens.load(CHANNEL)
        if stored is not None:
            self._record = stored
        else:
            # Only the very first start uses the configured token: later ones have rotated past it.
            configured = self.settings.refresh_token.get_secret_value()
            if not configured:
                raise AuthExpired("mercadolibre: no refresh token stored or configured; authorize the app first")
            self._record = TokenRecord(refresh_token=configured)
        self._loaded = True

    async def _flush(self) -> None:
        if self._unsaved is None:
            return
        try:
            await self.tokens.save(CHANNEL, self._unsaved)
        except Exception as err:  # the store's own errors vary (sqlite, I/O); all mean "not durable"
            raise Transient("mercadolibre: could not store the rotated refresh token; not using it yet") from err
        self._unsaved = None

    async def _refresh(self) -> TokenRecord:
        assert self._record is not None
        used = self._record.refresh_token
        try:
            answer = await self._grant(used)
        except _InvalidGrant:
            # Another process (or an earlier life of this one) may have rotated and stored it.
            stored = await self.tokens.load(CHANNEL)
            if stored is None or stored.refresh_token == used:
                raise AuthExpired(
                    "mercadolibre: refresh token refused (invalid_grant); the seller must re-authorize the app"
                ) from None
            self._record = stored
            if self._fresh(stored):
                return stored
            try:
                answer = await self._grant(stored.refresh_token)
            except _InvalidGrant:
                raise AuthExpired(
                    "mercadolibre: stored refresh token refused (invalid_grant); the seller must re-authorize"
                ) from None
        self.refreshes += 1
        record = TokenRecord(
            refresh_token=answer.refresh_token,
            access_token=answer.access_token,
            expires_at=self.clock() + timedelta(seconds=answer.expires_in),
        )
        # The old refresh token is dead now: hold the new one before anything can fail, save it, then use it.
        self._record = self._unsaved = record
        await self._flush()
        log.info("mercadolibre.token_refreshed", expires_in=answer.expires_in)
        return record

    async def _grant(self, refresh_token: str) -> TokenResponse:
        form = {
            "grant_type": "refresh_token",
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret.get_secret_value(),
            "refresh_token": refresh_token,
        }
        try:
            async with self.session.post(
                self.settings.token_url, data=form, headers={"Accept": "application/json"}, timeout=self.timeout
            ) as resp:
                status, headers, text = resp.status, dict(resp.headers), await resp.text()
        except TimeoutError as err:
            raise Transient("mercadolibre oauth_token: timed out") from err
        except aiohttp.ClientError as err:
            raise Transient(f"mercadolibre oauth_token: {type(err).__name__}") from err
        if status == 200:
            try:
                return TokenResponse.model_validate_json(text)
            except ValidationError:
                # The old token may be spent already; nothing to retry with.
                raise AuthExpired("mercadolibre oauth_token: unreadable 200 answer") from None
        error = _error_code(text)
        if status == 429:
            raise RateLimited(f"mercadolibre oauth_token: 429 {error}", parse_retry_after(headers))
        if status >= 500 or status == 408:
            raise Transient(f"mercadolibre oauth_token: {status} {error}", parse_retry_after(headers))
        if error == "invalid_grant":
            raise _InvalidGrant()
        if error in ("invalid_client", "unauthorized_client", "unauthorized_application", "forbidden"):
            raise AuthExpired(f"mercadolibre oauth_token: {status} {error}; check client_id/client_secret")
        raise Permanent(f"mercadolibre oauth_token: {status} {error}")


def _error_code(text: str) -> str:
    """The `error` code of a token-endpoint failure (JSON or Envoy's plain text); never the body."""
    with contextlib.suppress(ValueError):
        body = json.loads(text)
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return str(body["error"])[:60]
    stripped = text.strip()
    return stripped if stripped.isidentifier() and len(stripped) <= 60 else "error"
