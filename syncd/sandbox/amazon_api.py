"""The simulated service edge: LWA token endpoint, access-token check, usage plans, outages, headers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from syncd.sandbox.amazon_wire import MARKET, error_body, sp_error
from syncd.sandbox.common import CONTROL_PREFIX, OutageMode

LWA_PATH = "/auth/o2/token"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Statuses whose responses declare x-amzn-RateLimit-Limit in Amazon's models (APIS_EVIDENCE §1.2).
RATE_HEADER_STATUSES = {200, 400, 404}


def _is_api(request: web.Request) -> bool:
    return not request.path.startswith(CONTROL_PREFIX) and request.path != LWA_PATH


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """`x-amzn-RequestId` on every SP-API response, errors and outages included."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # aiohttp's own 404/405 for unknown paths
        response = web.json_response(error_body("NotFound", exc.reason), status=exc.status)
    if _is_api(request):
        response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
    return response


@web.middleware
async def outage_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """OutageMode for the whole host (LWA included), with Amazon's 503 body; /_sim/ always works."""
    mode = request.app[MARKET].mode
    if request.path.startswith(CONTROL_PREFIX) or mode is OutageMode.UP:
        return await handler(request)
    if mode is OutageMode.TIMEOUT:
        await asyncio.sleep(3600)
    return sp_error(503, "ServiceUnavailable", "Service temporarily unavailable. Please try again later.")


@web.middleware
async def gateway_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Per call: count it, check the access token (403), spend a usage-plan token (429)."""
    if not _is_api(request):
        return await handler(request)
    market = request.app[MARKET]
    route = request.match_info.route
    op = route.name or "unknown"
    market.counters.calls[op] += 1
    refusal = market.tokens.check(request.headers.get("x-amz-access-token"))
    if refusal is not None:
        market.counters.statuses["403"] += 1
        return sp_error(403, "Unauthorized", "Access to requested resource is denied.", refusal)
    if not market.buckets.take(op):
        market.counters.throttled[op] += 1
        market.counters.statuses["429"] += 1
        # No Retry-After and no rate header on a 429: Amazon's models declare neither.
        return sp_error(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")
    response = await handler(request)
    market.counters.statuses[str(response.status)] += 1
    plan = market.config.plans.get(op)
    if plan is not None and response.status in RATE_HEADER_STATUSES:
        response.headers["x-amzn-RateLimit-Limit"] = f"{plan[0]:g}"
    return response


def _lwa_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


async def lwa_token(request: web.Request) -> web.Response:
    """POST /auth/o2/token: form-encoded refresh_token (and client_credentials) grants."""
    market = request.app[MARKET]
    config = market.config
    if request.content_type != "application/x-www-form-urlencoded":
        market.counters.lwa["invalid_request"] += 1
        return _lwa_error(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
    form = await request.post()
    if form.get("client_id") != config.client_id or form.get("client_secret") != config.client_secret:
        market.counters.lwa["invalid_client"] += 1
        return _lwa_error(401, "invalid_client", "Client authentication failed")
    grant = form.get("grant_type")
    if grant == "refresh_token":
        if form.get("refresh_token") != config.refresh_token:
            market.counters.lwa["invalid_grant"] += 1
            return _lwa_error(
                400, "invalid_grant", "The request has an invalid grant parameter : refresh_token"
            )
        market.counters.lwa["refresh_token"] += 1
        token = market.tokens.issue(config.token_lifetime)
        # The refresh token comes back unchanged: SP-API refresh tokens do not rotate.
        return web.json_response(
            {
                "access_token": token,
                "refresh_token": config.refresh_token,
                "token_type": "bearer",
                "expires_in": int(config.token_lifetime),
            }
        )
    if grant == "client_credentials":
        if not form.get("scope"):
            return _lwa_error(400, "invalid_scope", "The request has an invalid parameter : scope")
        market.counters.lwa["client_credentials"] += 1
        token = market.tokens.issue(config.token_lifetime)
        return web.json_response(
            {
                "access_token": token,
                "scope": str(form["scope"]),
                "token_type": "bearer",
                "expires_in": int(config.token_lifetime),
            }
        )
    market.counters.lwa["unsupported_grant_type"] += 1
    return _lwa_error(400, "unsupported_grant_type", "The authorization grant type is not supported")


def add_routes(app: web.Application) -> None:
    """Register the LWA token endpoint."""
    app.router.add_post(LWA_PATH, lwa_token, name="lwaToken")
