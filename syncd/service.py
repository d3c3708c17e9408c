"""The seller-facing operations, shared by the admin API and the CLI (when no daemon runs)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from syncd.capture.events import Adjustment, Event, EventBody, ListingPause, PriceSet, Receipt, StockCount
from syncd.config import CHANNEL_NAMES, Settings
from syncd.domain.catalog import LISTING_HEADER, parse_catalog
from syncd.domain.models import ChannelHealth
from syncd.domain.status import ChannelFacts, judge_channel
from syncd.store import commands
from syncd.store.alerts import ack_alert
from syncd.store.apply import Policy, Result, ingest
from syncd.store.queries import Reader, Row
from syncd.store.writer import Writer


def policy_from(settings: Settings) -> Policy:
    """The apply policy a configuration implies."""
    return Policy(
        authority_window=timedelta(seconds=settings.stock.authority_window_seconds),
        drift_alert_threshold=settings.stock.drift_alert_threshold,
        observation_grace=timedelta(seconds=settings.stock.observation_grace_seconds),
    )


def retry_policy_from(settings: Settings) -> commands.RetryPolicy:
    """The outbox retry policy a configuration implies."""
    o = settings.outbox
    return commands.RetryPolicy(o.backoff_base_seconds, o.backoff_cap_seconds, o.max_attempts, o.deferral_budget)


class _RandomKeys:
    """Unguessable 24-hex-digit keys for requests without an Idempotency-Key, drawn from a buffer.

    `os.urandom` releases the GIL; on a busy host that hands the core to the writer thread and costs
    the request a thread switch (~50 µs of wall time measured under load). One call per 256 keys.
    """

    SIZE = 12

    def __init__(self, per_fill: int = 256) -> None:
        self._per_fill = per_fill
        self._buffer = b""
        self._at = 0

    def next(self) -> str:
        """A fresh key."""
        if self._at >= len(self._buffer):
            self._buffer, self._at = os.urandom(self.SIZE * self._per_fill), 0
        start, self._at = self._at, self._at + self.SIZE
        return self._buffer[start:self._at].hex()


class Service:
    """Seller actions go through the same door (the writer) as every channel report."""

    def __init__(
        self,
        settings: Settings,
        writer: Writer,
        reader: Reader,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        started_at: datetime | None = None,
        channel_names: list[str] | None = None,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.reader = reader
        self.clock = clock
        self.started_at = started_at or clock()
        self.policy = policy_from(settings)
        self.channel_names = channel_names if channel_names is not None else list(settings.channels.enabled())
        self._keys = _RandomKeys()

    async def act(self, body: EventBody, key: str | None = None) -> Result:
        """Submit one seller action as an event; `key` makes a retried request a no-op."""
        event = Event(dedupe_key=f"manual:{key or self._keys.next()}", source="manual", body=body)
        policy = self.policy
        return await self.writer.submit(lambda tx: ingest(tx, event, policy, strict=True))

    async def count(self, sku: str, location: str, qty: int, as_of: datetime | None = None,
                    source: str = "manual", key: str | None = None) -> Result:
        """A physical count; accepted or kept as a disagreement."""
        return await self.act(StockCount(sku=sku, location=location, qty=qty, as_of=as_of or self.clock(),
                                         source=source), key)

    async def receive(self, sku: str, location: str, qty: int, ref: str, key: str | None = None) -> Result:
        """Goods received by the seller."""
        return await self.act(Receipt(sku=sku, location=location, qty=qty, ref=ref, at=self.clock()), key)

    async def adjust(self, sku: str, location: str, delta: int, reason: str, key: str | None = None) -> Result:
        """A manual change of on hand with its reason."""
        return await self.act(Adjustment(sku=sku, location=location, delta=delta, reason=reason, at=self.clock()), key)

    async def set_price(self, sku: str, price: Decimal, channel: str | None = None, key: str | None = None) -> Result:
        """Set a price everywhere, or on one channel."""
        return await self.act(PriceSet(sku=sku, price=price, channel=channel), key)

    async def pause(self, channel: str, external_id: str, paused: bool, variation_id: str | None = None,
                    key: str | None = None) -> Result:
        """Pause or resume one listing."""
        return await self.act(
            ListingPause(channel=channel, external_id=external_id, variation_id=variation_id, paused=paused), key)

    async def reserve(self, sku: str, qty: int, ttl_seconds: int | None = None,
                      location: str | None = None) -> dict[str, Any]:
        """Atomic hold: granted only if available ≥ qty, else `Conflict`."""
        ttl = ttl_seconds or self.settings.stock.default_reservation_ttl_seconds
        return await self.writer.submit(lambda tx: commands.reserve(tx, sku, qty, ttl, location))

    async def release(self, reservation_id: str) -> bool:
        """Release a hold."""
        return await self.writer.submit(lambda tx: commands.release(tx, reservation_id))

    async def ack(self, alert_id: int) -> bool:
        """Acknowledge an alert."""
        return await self.writer.submit(lambda tx: ack_alert(tx, alert_id))

    async def dlq_retry(self, listing_id: int | None = None) -> int:
        """Requeue dead pushes."""
        return await self.writer.submit(lambda tx: commands.dlq_retry(tx, listing_id))

    async def import_catalog(self, text: str) -> dict[str, Any]:
        """Import a catalog CSV; raises `Rejected` with every problem when it has any."""
        plan = parse_catalog(text, set(CHANNEL_NAMES), set(self.settings.locations))
        fba = {loc for loc, cfg in self.settings.locations.items() if cfg.kind == "fba"}
        return await self.writer.submit(lambda tx: commands.import_catalog(tx, plan, fba))

    async def export_catalog(self) -> str:
        """The catalog as CSV in the import format (round-trips)."""
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(LISTING_HEADER)
        products = {p["sku"]: p for p in await self.reader.products()}
        listed: set[tuple[str, str]] = set()
        for row in await self.reader.listings():
            p = products[row["sku"]]
            share = "" if row["share"] == 1.0 else f"{row['share']:g}"
            w.writerow([row["sku"], p["title"], row["location"], row["channel"], row["external_id"],
                        row["variation_id"], p["buffer"], "" if row["cap"] is None else row["cap"], share])
            listed.add((row["sku"], row["location"]))
        for pool in await self.reader.rows("SELECT sku, location FROM stock ORDER BY sku, location"):
            if (pool["sku"], pool["location"]) not in listed:
                p = products[pool["sku"]]
                w.writerow([pool["sku"], p["title"], pool["location"], "", "", "", p["buffer"], "", ""])
        kits = await self.reader.rows("SELECT * FROM kit_components ORDER BY kit_sku, component_sku")
        if kits:
            w.writerow(["kit_sku", "component_sku", "qty"])
            for k in kits:
                w.writerow([k["kit_sku"], k["component_sku"], k["qty"]])
        return out.getvalue()

    async def status(self) -> tuple[dict[str, Any], bool]:
        """The honest status document and whether every channel is ok."""
        now = self.clock()
        channels: dict[str, Row] = {}
        for name in self.channel_names:
            cfg = getattr(self.settings.channels, name, None)
            threshold = cfg.lag_threshold_seconds if cfg else 300.0
            down_after = cfg.down_after_failures if cfg else 5
            facts = await self.reader.channel_facts(name, now)
            verdict = judge_channel(ChannelFacts(
                last_success=facts["last_success"], started_at=self.started_at,
                consecutive_failures=facts["consecutive_failures"], oldest_pending=facts["oldest_pending"],
                lag_threshold_seconds=threshold, down_after_failures=down_after,
                unmatched_since=facts["unmatched_since"]), now)
            channels[name] = {
                "state": verdict.state.value,
                "last_success": facts["last_success"].isoformat() if facts["last_success"] else None,
                "lag_seconds": round(verdict.lag_seconds, 3),
                "queue_depth": facts["queue_depth"],
                "oldest_pending_seconds": round(verdict.oldest_pending_seconds, 3),
                "unmatched_seconds": round(verdict.unmatched_seconds, 3),
                "consecutive_failures": facts["consecutive_failures"],
                "dead": facts["dead"],
                "last_error": facts["last_error"],
                "rate_limited_until": facts["rate_limited_until"],
                "lag_threshold_seconds": threshold,
            }
        healthy = all(c["state"] == ChannelHealth.OK.value for c in channels.values())
        counts = await self.reader.counts()
        doc = {
            "status": "ok" if healthy else "degraded",
            "now": now.isoformat(),
            "started_at": self.started_at.isoformat(),
            "channels": channels,
            "writer": {"queue_depth": self.writer.depth, "batches": self.writer.stats.batches,
                       "commands": self.writer.stats.commands, "failed_commands": self.writer.stats.failed_commands,
                       "failed_batches": self.writer.stats.failed_batches},
            "totals": counts,
        }
        return doc, healthy

