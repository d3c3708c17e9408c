"""Simulated `POST /oauth/token`: 6 h access tokens and single-use, rotating refresh tokens."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from syncd.sandbox.mercadolibre_core import IdSource, SimClock, SimConfig, SimError

_GRANT_MESSAGE = (
    "Error validating grant. Your authorization code or refresh token may be expired or it was already used"
)


def oauth_error(error: str, message: str, status: int = 400) -> SimError:
    """Token-endpoint errors carry `message` (not `error_description`) in current captures."""
    return SimError(status, {"message": message, "error": error, "status": status, "cause": []})


class OAuthState:
    """Which refresh and access tokens are valid right now."""

    def __init__(self, config: SimConfig, clock: SimClock, ids: IdSource) -> None:
        self.config = config
        self.clock = clock
        self.ids = ids
        # Only the newest refresh token is valid: each refresh removes the one it used.
        self.refresh_tokens: dict[str, datetime] = {}
        self.access_tokens: dict[str, datetime] = {}
        self.codes: set[str] = set()
        self.refreshes = 0
        self.invalid_grants = 0
        first = config.initial_refresh_token or self._new_refresh_token()
        self.refresh_tokens[first] = clock.now()

    def _new_refresh_token(self) -> str:
        return f"TG-{self.ids.hex(24)}-{self.config.user_id}"

    def _new_access_token(self, now: datetime) -> str:
        stamp = now.strftime("%m%d%H")
        return f"APP_USR-{self.config.application_id}-{stamp}-{self.ids.hex(32)}-{self.config.user_id}"

    @property
    def current_refresh_token(self) -> str | None:
        """The one refresh token that would work now (control plane and tests only)."""
        return next(iter(self.refresh_tokens), None)

    def issue_code(self) -> str:
        """An authorization code, as the consent page would redirect with."""
        code = f"TG-{self.ids.hex(24)}-{self.config.user_id}"
        self.codes.add(code)
        return code

    def install_refresh_token(self, token: str) -> None:
        """Replace every grant with `token` (a re-authorization done by hand)."""
        self.refresh_tokens = {token: self.clock.now()}

    def revoke(self) -> None:
        """Revoke every token (password change, grant removed in the seller's account)."""
        self.refresh_tokens.clear()
        self.access_tokens.clear()

    def expire_access_tokens(self) -> None:
        """Make every issued access token expired (without touching refresh tokens)."""
        now = self.clock.now()
        self.access_tokens = dict.fromkeys(self.access_tokens, now)

    def access_valid(self, token: str) -> bool:
        """True when `token` was issued and has not expired."""
        expires = self.access_tokens.get(token)
        return expires is not None and self.clock.now() < expires

    def grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        """Answer one token request (form fields already parsed); raises SimError."""
        grant_type = form.get("grant_type", "")
        if grant_type not in ("refresh_token", "authorization_code"):
            if not grant_type:
                raise oauth_error("invalid_request", "grant_type is required")
            raise oauth_error("unsupported_grant_type", f"unsupported grant_type {grant_type}")
        if form.get("client_id") != self.config.client_id or form.get("client_secret") != self.config.client_secret:
            raise oauth_error("invalid_client", "invalid client_id or client_secret")
        now = self.clock.now()
        if grant_type == "authorization_code":
            code = form.get("code", "")
            if code not in self.codes:
                self.invalid_grants += 1
                raise oauth_error("invalid_grant", _GRANT_MESSAGE)
            self.codes.discard(code)
            self.refresh_tokens.clear()
        else:
            token = form.get("refresh_token", "")
            issued = self.refresh_tokens.pop(token, None)
            if issued is None or now - issued > timedelta(seconds=self.config.refresh_ttl_seconds):
                self.invalid_grants += 1
                raise oauth_error("invalid_grant", _GRANT_MESSAGE)
            self.refreshes += 1
        refresh = self._new_refresh_token()
        self.refresh_tokens = {refresh: now}
        access = self._new_access_token(now)
        ttl = self.config.access_ttl_seconds
        self.access_tokens[access] = now + timedelta(seconds=ttl)
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
            "scope": "offline_access read write",
            "user_id": self.config.user_id,
            "refresh_token": refresh,
        }
