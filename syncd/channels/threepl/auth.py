"""ShipBob Personal Access Token auth: a static bearer token, nothing to refresh."""

from __future__ import annotations

from pydantic import SecretStr

from syncd.channels.base import AuthExpired, Permanent


class PatAuth:
    """Adds `Authorization: Bearer <PAT>`; a refused PAT can only be replaced by the operator.

    syncd uses the PAT flow (APIS.md §3.1), the simplest for a self-hosted daemon, so the TokenStore
    is not needed: a PAT does not rotate. OAuth2 would need a TokenStore-backed refresh here.
    """

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def headers(self) -> dict[str, str]:
        """Request headers carrying the token."""
        value = self._token.get_secret_value()
        if not value:
            raise Permanent("threepl: channels.threepl.api_token is not set")
        return {"Authorization": f"Bearer {value}"}

    @staticmethod
    def refused(op: str) -> AuthExpired:
        """The error for a 401: names the setting to fix, never the token."""
        return AuthExpired(
            f"threepl {op}: 401, the personal access token was refused; replace channels.threepl.api_token"
        )

    def __repr__(self) -> str:
        return "PatAuth(token=**********)"
