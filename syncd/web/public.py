"""The public app: only `/webhooks/<channel>`, authenticated, answered after a durable inbox write."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import structlog
from aiohttp import web

from syncd.channels.base import WebhookReceiver
from syncd.store.apply import Policy, ingest
from syncd.store.writer import Writer
from syncd.web.errors import error, json_errors

log = structlog.get_logger(__name__)

RECEIVERS: web.AppKey[Mapping[str, WebhookReceiver]] = web.AppKey("receivers")
WRITER: web.AppKey[Writer] = web.AppKey("writer", Writer)
POLICY: web.AppKey[Policy] = web.AppKey("policy", Policy)
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
ON_DELIVERY: web.AppKey[Callable[[str], None]] = web.AppKey("on_delivery")


async def webhook(request: web.Request) -> web.Response:
    """Authenticate, parse, store durably, then answer 200; 401 / 400 change nothing."""
    channel = request.match_info["channel"]
    receiver = request.app[RECEIVERS].get(channel)
    if receiver is None:
        return error(404, "no such webhook")
    body = await request.read()
    headers = {k.lower(): v for k, v in request.headers.items()}
    if not receiver.authenticate(request.match_info.get("secret"), headers, body):
        log.warning("webhook refused: bad authentication", channel=channel, peer=request.remote)
        return error(401, "unauthorized")
    try:
        events = receiver.parse(headers, body, request.app[CLOCK]())
    except ValueError as err:
        log.warning("webhook refused: malformed", channel=channel, error=str(err)[:300])
        return error(400, "malformed notification", str(err)[:300])
    writer, policy = request.app[WRITER], request.app[POLICY]
    # Shield: a client that hangs up must not cancel a write the writer has already taken.
    results = await asyncio.shield(writer.submit(lambda tx: [ingest(tx, e, policy) for e in events]))
    request.app[ON_DELIVERY](channel)
    return web.json_response({"accepted": len(events), "outcomes": [r.outcome.value for r in results]})


def create_public_app(
    receivers: Mapping[str, WebhookReceiver],
    writer: Writer,
    policy: Policy,
    max_body: int,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_delivery: Callable[[str], None] = lambda channel: None,
) -> web.Application:
    """Build the webhook-only application."""
    app = web.Application(middlewares=[json_errors], client_max_size=max_body)
    app[RECEIVERS] = receivers
    app[WRITER] = writer
    app[POLICY] = policy
    app[CLOCK] = clock
    app[ON_DELIVERY] = on_delivery
    app.router.add_post("/webhooks/{channel}", webhook)
    app.router.add_post("/webhooks/{channel}/{secret}", webhook)
    return app
