"""GET /metrics: Prometheus text built from the same status the /status endpoint shows."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from syncd.channels.http import CallStats
from syncd.web.api import SERVICE

CALL_STATS: web.AppKey[Callable[[], Mapping[str, CallStats]]] = web.AppKey("call_stats")


async def metrics(request: web.Request) -> web.Response:
    """Scrape-time gauges; a fresh registry each scrape keeps them exactly the current truth."""
    doc, healthy = await request.app[SERVICE].status()
    reg = CollectorRegistry()
    up = Gauge("syncd_healthy", "1 when every channel is ok", registry=reg)
    up.set(1 if healthy else 0)
    state = Gauge("syncd_channel_state", "1 for the channel's current state", ["channel", "state"], registry=reg)
    lag = Gauge("syncd_channel_lag_seconds", "Seconds since the last successful sync", ["channel"], registry=reg)
    depth = Gauge("syncd_channel_queue_depth", "Pending pushes", ["channel"], registry=reg)
    oldest = Gauge("syncd_channel_oldest_pending_seconds", "Age of the oldest pending push", ["channel"],
                   registry=reg)
    dead = Gauge("syncd_channel_dead_pushes", "Pushes in the dead-letter queue", ["channel"], registry=reg)
    fails = Gauge("syncd_channel_consecutive_failures", "Consecutive failed calls", ["channel"], registry=reg)
    for name, ch in doc["channels"].items():
        for s in ("ok", "lagging", "down"):
            state.labels(name, s).set(1 if ch["state"] == s else 0)
        lag.labels(name).set(ch["lag_seconds"])
        depth.labels(name).set(ch["queue_depth"])
        oldest.labels(name).set(ch["oldest_pending_seconds"])
        dead.labels(name).set(ch["dead"])
        fails.labels(name).set(ch["consecutive_failures"])
    totals = Gauge("syncd_total", "Row counts by kind", ["kind"], registry=reg)
    for kind, value in doc["totals"].items():
        totals.labels(kind).set(value or 0)
    writer = Counter("syncd_writer_commands", "Commands committed by the writer", registry=reg)
    writer.inc(doc["writer"]["commands"])
    batches = Counter("syncd_writer_batches", "Transactions committed by the writer", registry=reg)
    batches.inc(doc["writer"]["batches"])
    failed = Counter("syncd_writer_failed_commands", "Commands refused or failed (their savepoint rolled back)",
                     registry=reg)
    failed.inc(doc["writer"]["failed_commands"])
    lost = Counter("syncd_writer_failed_batches", "Transactions that could not commit", registry=reg)
    lost.inc(doc["writer"]["failed_batches"])
    stats_of = request.app.get(CALL_STATS)
    if stats_of is not None:
        calls = Counter("syncd_channel_calls", "API calls made", ["channel", "operation"], registry=reg)
        limited = Counter("syncd_channel_rate_limited", "429 answers received", ["channel", "operation"],
                          registry=reg)
        for channel, stats in stats_of().items():
            for op, n in stats.calls.items():
                calls.labels(channel, op).inc(n)
            for op, n in stats.rate_limited.items():
                limited.labels(channel, op).inc(n)
    return web.Response(body=generate_latest(reg), headers={"Content-Type": CONTENT_TYPE_LATEST})
