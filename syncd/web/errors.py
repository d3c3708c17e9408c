"""JSON errors `{"error", "detail"}` with a 4xx status, and turning domain refusals into them."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web
from pydantic import ValidationError

from syncd.store.apply import Rejected
from syncd.store.commands import Conflict

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, message: str, detail: Any = None) -> web.Response:
    """A JSON error response."""
    return web.json_response({"error": message, "detail": detail}, status=status)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map bad input to 4xx with a reason; never let a refusal surface as a 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and request.path.startswith(("/api", "/status", "/webhooks")):
            return error(exc.status, exc.reason)
        raise
    except ValidationError as err:
        problems = [{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in err.errors()]
        log.info("bad request", path=request.path, problems=problems)
        return error(400, "invalid request", problems)
    except json.JSONDecodeError as err:
        log.info("malformed JSON", path=request.path, error=str(err))
        return error(400, "malformed JSON", str(err))
    except Rejected as err:
        status = 404 if err.reason.startswith(("unknown SKU", "unknown listing")) else 422
        return error(status, err.reason, err.detail)
    except Conflict as err:
        return error(409, err.reason, err.detail)


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; raises JSONDecodeError (→ 400) on anything else."""
    text = await request.text()
    return json.loads(text)
