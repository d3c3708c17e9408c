"""The admin app: board, /status, /metrics and the JSON API, bound to loopback by default."""

from __future__ import annotations

from aiohttp import web

from syncd.service import Service
from syncd.web import api, board
from syncd.web.errors import Handler, error, json_errors
from syncd.web.metrics import metrics

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def _hostname(host: str) -> str:
    return host.rsplit(":", 1)[0] if not host.endswith("]") else host


@web.middleware
async def same_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse state-changing requests that a browser marks as coming from another site, and, on a
    loopback listener, any request naming another host (a DNS-rebinding page would)."""
    local = request.transport is not None and (request.transport.get_extra_info("sockname") or ("",))[0] in (
        "127.0.0.1", "::1")
    if local and _hostname(request.host) not in LOOPBACK_NAMES:
        return error(403, "unexpected Host header for a loopback listener")
    if request.method in UNSAFE:
        if request.headers.get("Sec-Fetch-Site") == "cross-site":
            return error(403, "cross-site request refused")
        origin = request.headers.get("Origin")
        if origin and origin != "null" and origin.split("://", 1)[-1] != request.host:
            return error(403, "cross-origin request refused")
        if origin == "null":
            return error(403, "cross-origin request refused")
    return await handler(request)


def create_admin_app(service: Service) -> web.Application:
    """Build the admin application around a service."""
    app = web.Application(middlewares=[json_errors, same_origin], client_max_size=8 * 1024 * 1024)
    app[api.SERVICE] = service
    api.add_routes(app)
    board.add_routes(app)
    app.router.add_get("/metrics", metrics)
    return app
