"""Read queries on a separate read-only connection; the writer stays the only writer."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from syncd.channels.base import TokenRecord
from syncd.store.db import read_only_uri
from syncd.store.timefmt import iso, parse

Row = dict[str, Any]


class Reader:
    """Async read access for the API, board, status and push workers."""

    def __init__(self, path: Path, size: int = 3) -> None:
        self.path = path
        self.size = size
        self._all: list[aiosqlite.Connection] = []
        self._idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()

    async def open(self) -> None:
        """Connect read-only (the writer has already created and migrated the file)."""
        for _ in range(self.size):
            db = await aiosqlite.connect(read_only_uri(self.path), uri=True)
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA query_only = ON")
            self._all.append(db)
            self._idle.put_nowait(db)

    async def close(self) -> None:
        """Disconnect."""
        for db in self._all:
            await db.close()
        self._all.clear()

    async def rows(self, sql: str, params: Any = ()) -> list[Row]:
        """All rows of a query as dicts.

        Each query has a connection to itself until its rows are read: a half-read statement keeps
        its connection's read snapshot open, and a query sharing it would see stale data.
        """
        assert self._all, "reader not open"
        db = await self._idle.get()
        try:
            async with db.execute(sql, params) as cur:
                return [dict(r) for r in await cur.fetchall()]
        finally:
            self._idle.put_nowait(db)

    async def one(self, sql: str, params: Any = ()) -> Row | None:
        """The first row of a query, or None."""
        found = await self.rows(sql, params)
        return found[0] if found else None

    # ---- products ----

    async def products(self, search: str = "", sku: str | None = None) -> list[Row]:
        """Every product (or one SKU) with its totals across pools."""
        like = f"%{search}%"
        return await self.rows(
            "SELECT p.sku, p.title, p.safety_buffer AS buffer, p.is_kit, p.price,"
            " COALESCE(SUM(a.on_hand), 0) AS on_hand, COALESCE(SUM(a.committed), 0) AS committed,"
            " COALESCE(SUM(a.reserved), 0) AS reserved, COALESCE(SUM(a.available), 0) AS available,"
            " COALESCE(MAX(a.oversold_by), 0) AS oversold_by"
            " FROM products p LEFT JOIN availability a ON a.sku = p.sku"
            " WHERE (p.sku LIKE ? OR p.title LIKE ?) AND (? IS NULL OR p.sku = ?) GROUP BY p.sku ORDER BY p.sku",
            (like, like, sku, sku),
        )

    async def product(self, sku: str) -> Row | None:
        """One product: totals, pools, listings with target/pushed/observed, and the explain trace."""
        found = await self.products(sku=sku) if sku else []
        if not found:
            return None
        product = found[0]
        product["pools"] = await self.rows("SELECT * FROM availability WHERE sku = ? ORDER BY location", (sku,))
        product["listings"] = await self.listings(sku)
        product["kit_components"] = await self.rows(
            "SELECT component_sku AS sku, qty FROM kit_components WHERE kit_sku = ?", (sku,))
        product["explain"] = await self.explain(sku)
        return product

    async def listings(self, sku: str | None = None) -> list[Row]:
        """Listings with what syncd wants, what the channel confirmed and what it was seen showing."""
        rows = await self.rows(
            "SELECT l.id, l.sku, l.channel, l.external_id, l.variation_id, l.location, l.cap, l.share, l.paused,"
            " l.managed, l.price, l.target_qty AS target, q.value AS last_pushed, q.at AS last_pushed_at,"
            " l.observed_qty AS last_observed, l.observed_status, l.observed_price, l.observed_at, l.matched_at,"
            " o.value AS pending_value, o.state AS pending_state, o.attempts AS pending_attempts,"
            " o.last_error AS pending_error"
            " FROM listings l LEFT JOIN pushed q ON q.listing_id = l.id AND q.field = 'quantity'"
            " LEFT JOIN outbox o ON o.listing_id = l.id AND o.field = 'quantity'"
            " WHERE ? IS NULL OR l.sku = ? ORDER BY l.sku, l.channel, l.external_id, l.variation_id",
            (sku, sku),
        )
        for row in rows:
            row["last_pushed"] = int(row["last_pushed"]) if row["last_pushed"] is not None else None
            row["mismatch"] = bool(row["managed"]) and row["channel"] != "threepl" and (
                row["last_pushed"] != row["target"]
                or (row["last_observed"] is not None and row["last_observed"] != row["target"]))
        return rows

    async def explain(self, sku: str) -> Row:
        """Why the available is what it is: counts, movements since, holds, buffer, rules, pushes."""
        stock = await self.rows("SELECT * FROM stock WHERE sku = ? ORDER BY location", (sku,))
        pools = []
        for pool in stock:
            since = pool["counted_as_of"] or ""
            pools.append({
                "location": pool["location"],
                "on_hand": pool["on_hand"],
                "count": {"qty": pool["counted_qty"], "as_of": pool["counted_as_of"], "source": pool["counted_source"]},
                "movements_since_count": await self.rows(
                    "SELECT delta, reason, ref, at FROM ledger WHERE sku = ? AND location = ? AND at > ?"
                    " AND reason != 'count' ORDER BY at, id", (sku, pool["location"], since)),
                "rejected_counts": await self.rows(
                    "SELECT qty, as_of, source, verdict, recorded FROM counts WHERE sku = ? AND location = ?"
                    " AND verdict != 'accepted' ORDER BY id DESC LIMIT 10", (sku, pool["location"])),
            })
        return {
            "pools": pools,
            "commitments": await self.rows(
                "SELECT l.channel, l.order_id, l.line_id, l.qty, l.state, l.location, l.kit_sku, o.hold_until"
                " FROM order_lines l JOIN orders o USING (channel, order_id)"
                " WHERE l.sku = ? AND l.state IN ('committed', 'reserved') ORDER BY o.recorded", (sku,)),
            "reservations": await self.rows(
                "SELECT id, location, qty, expires_at FROM reservations WHERE sku = ? AND released = 0"
                " ORDER BY expires_at", (sku,)),
            "buffer_rule": "available = on_hand − committed − reserved − safety_buffer, floored at 0",
            "listing_rule": "target = min(cap, floor(available × share)); 0 when paused or oversold",
            "pushes": await self.rows(
                "SELECT g.listing_id, l.channel, l.external_id, g.field, g.value, g.outcome, g.detail, g.at"
                " FROM push_log g JOIN listings l ON l.id = g.listing_id WHERE l.sku = ?"
                " ORDER BY g.id DESC LIMIT 50", (sku,)),
        }

    # ---- orders, alerts ----

    async def orders(self, channel: str | None = None, state: str | None = None, limit: int = 200) -> list[Row]:
        """Orders of every channel in one list, newest first, with their lines."""
        orders = await self.rows(
            "SELECT channel, order_id, state, last_updated, created_at, hold_until, recorded FROM orders"
            " WHERE (? IS NULL OR channel = ?) AND (? IS NULL OR state = ?)"
            " ORDER BY COALESCE(created_at, recorded) DESC, recorded DESC LIMIT ?",
            (channel, channel, state, state, limit),
        )
        for order in orders:
            order["lines"] = await self.rows(
                "SELECT line_id, sku, kit_sku, location, qty, state FROM order_lines"
                " WHERE channel = ? AND order_id = ? ORDER BY line_id, sku", (order["channel"], order["order_id"]))
        return orders

    async def alerts(self, include_acked: bool = False) -> list[Row]:
        """Alerts, newest first; open ones only unless asked."""
        rows = await self.rows(
            "SELECT * FROM alerts WHERE ? OR acked_at IS NULL ORDER BY updated_at DESC LIMIT 500", (include_acked,))
        for row in rows:
            row["detail"] = json.loads(row["detail"])
        return rows

    # ---- status, outbox, inbox, tokens ----

    async def channel_facts(self, channel: str, now: datetime) -> Row:
        """What /status needs about one channel."""
        state = await self.one("SELECT * FROM channel_state WHERE channel = ?", (channel,)) or {}
        queue = await self.one(
            "SELECT COUNT(*) FILTER (WHERE state = 'pending') AS depth,"
            " COUNT(*) FILTER (WHERE state = 'dead') AS dead,"
            " MIN(created_at) FILTER (WHERE state = 'pending') AS oldest FROM outbox WHERE channel = ?",
            (channel,),
        ) or {}
        # A listing read back after its confirmed push, still not showing it, with nothing queued to fix it.
        unmatched = await self.one(
            "SELECT MIN(MAX(COALESCE(l.matched_at, ''), p.at)) AS since FROM listings l"
            " JOIN pushed p ON p.listing_id = l.id AND p.field = 'quantity'"
            " WHERE l.channel = ? AND l.managed = 1 AND l.observed_qty IS NOT NULL"
            " AND l.observed_qty != l.target_qty AND l.observed_at > p.at AND CAST(p.value AS INTEGER) = l.target_qty"
            " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.listing_id = l.id AND o.field = 'quantity')",
            (channel,),
        ) or {}
        return {
            "unmatched_since": parse(unmatched.get("since")),
            "last_success": parse(state.get("last_success")),
            "last_error": state.get("last_error"),
            "consecutive_failures": state.get("consecutive_failures", 0),
            "rate_limited_until": state.get("rate_limited_until"),
            "cursors": json.loads(state.get("cursors") or "{}"),
            "queue_depth": queue.get("depth") or 0,
            "dead": queue.get("dead") or 0,
            "oldest_pending": parse(queue.get("oldest")),
        }

    async def due_pushes(self, channel: str, now: datetime, limit: int = 50) -> list[Row]:
        """Pending pushes whose time has come, oldest first."""
        return await self.rows(
            "SELECT o.listing_id, o.field, o.value, o.version, o.attempts, l.external_id, l.variation_id, l.sku"
            " FROM outbox o JOIN listings l ON l.id = o.listing_id"
            " WHERE o.channel = ? AND o.state = 'pending' AND o.next_attempt <= ?"
            " ORDER BY o.next_attempt, o.created_at LIMIT ?",
            (channel, iso(now), limit),
        )

    async def next_push_time(self, channel: str) -> datetime | None:
        """When the earliest pending push of a channel falls due."""
        row = await self.one(
            "SELECT MIN(next_attempt) AS t FROM outbox WHERE channel = ? AND state = 'pending'", (channel,))
        return parse(row["t"]) if row else None

    async def dead_pushes(self) -> list[Row]:
        """The dead-letter queue."""
        return await self.rows(
            "SELECT o.listing_id, o.channel, l.sku, l.external_id, l.variation_id, o.field, o.value, o.attempts,"
            " o.last_error, o.created_at FROM outbox o JOIN listings l ON l.id = o.listing_id"
            " WHERE o.state = 'dead' ORDER BY o.created_at")

    async def pending_notifications(self, now: datetime, limit: int = 50) -> list[Row]:
        """Pointer notifications stored but not yet fetched, whose (re)try is due."""
        return await self.rows(
            "SELECT id, source, payload, attempts FROM inbox WHERE state = 'pending_fetch'"
            " AND (next_attempt IS NULL OR next_attempt <= ?) ORDER BY id LIMIT ?",
            (iso(now), limit))

    async def token(self, channel: str) -> TokenRecord | None:
        """A channel's stored tokens."""
        row = await self.one("SELECT * FROM tokens WHERE channel = ?", (channel,))
        if row is None:
            return None
        return TokenRecord(row["refresh_token"], row["access_token"], parse(row["expires_at"]))

    async def counts(self) -> Row:
        """Totals for /metrics and the board's overview."""
        row = await self.one(
            "SELECT (SELECT COUNT(*) FROM products) AS products,"
            " (SELECT COUNT(*) FROM orders) AS orders,"
            " (SELECT COUNT(*) FROM inbox) AS inbox_events,"
            " (SELECT COUNT(*) FROM inbox WHERE state = 'failed') AS inbox_failed,"
            " (SELECT COUNT(*) FROM inbox WHERE state = 'pending_fetch') AS inbox_pending,"
            " (SELECT COUNT(*) FROM outbox WHERE state = 'pending') AS outbox_pending,"
            " (SELECT COUNT(*) FROM outbox WHERE state = 'dead') AS outbox_dead,"
            " (SELECT COUNT(*) FROM alerts WHERE acked_at IS NULL AND kind = 'oversell') AS oversells,"
            " (SELECT COUNT(*) FROM alerts WHERE kind = 'drift') AS drift_repairs,"
            " (SELECT COUNT(*) FROM alerts WHERE acked_at IS NULL AND kind = 'reorder') AS reorder_alerts,"
            " (SELECT COUNT(*) FROM alerts WHERE acked_at IS NULL) AS open_alerts")
        return row or {}
