"""Recomputing the real available of touched products and the pushes that follow, inside a command.

Called at the end of every command that changes stock, in the same transaction, so an Amazon sale
lowers the MercadoLibre listing in the commit that records the sale.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from syncd.domain.available import kit_available, listing_target, real_available
from syncd.domain.models import AlertKind, Availability, Field, ListingRule, StockFigures
from syncd.store.alerts import raise_alert
from syncd.store.timefmt import iso
from syncd.store.writer import Tx

# Channels syncd sells on and pushes to; other channels (the 3PL) only map external ids.
PUSH_CHANNELS = frozenset({"amazon", "mercadolibre"})


def figures(conn: sqlite3.Connection, sku: str, location: str, now: str) -> StockFigures:
    """On hand, committed, live reservations and buffer of one product in one pool."""
    row = conn.execute(
        "SELECT"
        " (SELECT on_hand FROM stock WHERE sku = :sku AND location = :loc) AS on_hand,"
        " (SELECT SUM(qty) FROM order_lines WHERE sku = :sku AND location = :loc"
        "   AND state = 'committed') AS committed,"
        " (SELECT SUM(l.qty) FROM order_lines l JOIN orders o USING (channel, order_id)"
        "   WHERE l.sku = :sku AND l.location = :loc AND l.state = 'reserved'"
        "   AND (o.hold_until IS NULL OR o.hold_until > :now)) AS held,"
        " (SELECT SUM(qty) FROM reservations WHERE sku = :sku AND location = :loc"
        "   AND released = 0 AND expires_at > :now) AS reserved,"
        " (SELECT safety_buffer FROM products WHERE sku = :sku) AS buffer",
        {"sku": sku, "loc": location, "now": now},
    ).fetchone()
    return StockFigures(
        on_hand=row["on_hand"] or 0,
        committed=row["committed"] or 0,
        reserved=(row["held"] or 0) + (row["reserved"] or 0),
        buffer=row["buffer"] or 0,
    )


def _locations_of(conn: sqlite3.Connection, sku: str) -> list[str]:
    rows = conn.execute(
        "SELECT location FROM stock WHERE sku = ? UNION SELECT location FROM listings WHERE sku = ?"
        " UNION SELECT location FROM order_lines WHERE sku = ? AND state IN ('committed', 'reserved')",
        (sku, sku, sku),
    ).fetchall()
    return sorted(r["location"] for r in rows)


def _store(tx: Tx, sku: str, location: str, fig: StockFigures, avail: Availability) -> None:
    tx.conn.execute(
        "INSERT INTO availability VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (sku, location) DO UPDATE SET on_hand = excluded.on_hand,"
        " committed = excluded.committed, reserved = excluded.reserved, buffer = excluded.buffer,"
        " available = excluded.available, oversold_by = excluded.oversold_by,"
        " updated_at = excluded.updated_at",
        (sku, location, fig.on_hand, fig.committed, fig.reserved, fig.buffer, avail.available,
         avail.oversold_by, iso(tx.now)),
    )


def _with_kits(conn: sqlite3.Connection, skus: Iterable[str]) -> tuple[list[str], list[str]]:
    base = set(skus)
    if not base:
        return [], []
    marks = ",".join("?" * len(base))
    kits = {r[0] for r in conn.execute(
        f"SELECT kit_sku FROM kit_components WHERE component_sku IN ({marks})"
        f" UNION SELECT sku FROM products WHERE is_kit = 1 AND sku IN ({marks})", (*base, *base))}
    return sorted(base - kits), sorted(kits)


def touch(tx: Tx, skus: Iterable[str]) -> None:
    """Mark products changed; `flush` recomputes them once before the transaction commits.

    Fifty sales of one product in a batch cost one recomputation, not fifty. Rules that need a
    fresh number inside a command (a reservation's check) compute it from the base tables.
    """
    tx.touched.update(skus)


def flush(tx: Tx) -> None:
    """Recompute every touched product (the writer's per-batch finalizer)."""
    if tx.touched:
        skus, tx.touched = tx.touched, set()
        refresh(tx, skus)


def refresh(tx: Tx, skus: Iterable[str]) -> dict[tuple[str, str], Availability]:
    """Recompute touched products (and kits built from them), their listings' targets and pushes."""
    simple, kits = _with_kits(tx.conn, skus)
    now = iso(tx.now)
    computed: dict[tuple[str, str], Availability] = {}
    for sku in simple:
        for location in _locations_of(tx.conn, sku):
            fig = figures(tx.conn, sku, location, now)
            avail = real_available(fig)
            computed[(sku, location)] = avail
            _store(tx, sku, location, fig, avail)
            if avail.oversold:
                _raise_oversell(tx, sku, location, avail.oversold_by)
    for kit in kits:
        for location in _locations_of(tx.conn, kit) or []:
            avail = Availability(available=_kit_available(tx, kit, location, computed), oversold_by=0)
            computed[(kit, location)] = avail
            _store(tx, kit, location, StockFigures(0, 0, 0, 0), avail)
    for sku in [*simple, *kits]:
        _retarget_listings(tx, sku, computed)
    return computed


def _kit_available(
    tx: Tx, kit: str, location: str, computed: dict[tuple[str, str], Availability]
) -> int:
    parts = tx.conn.execute(
        "SELECT component_sku, qty FROM kit_components WHERE kit_sku = ?", (kit,)
    ).fetchall()
    pairs = []
    for part in parts:
        key = (part["component_sku"], location)
        if key not in computed:
            computed[key] = real_available(figures(tx.conn, key[0], location, iso(tx.now)))
        pairs.append((computed[key].available, part["qty"]))
    return kit_available(pairs)


def _retarget_listings(tx: Tx, sku: str, computed: dict[tuple[str, str], Availability]) -> None:
    listings = tx.conn.execute(
        "SELECT id, channel, location, cap, share, paused, managed, target_qty FROM listings WHERE sku = ?", (sku,)
    ).fetchall()
    for listing in listings:
        avail = computed.get((sku, listing["location"]), Availability(0, 0))
        rule = ListingRule(share=listing["share"], cap=listing["cap"], paused=bool(listing["paused"]))
        target = listing_target(avail.available, rule, oversold=avail.oversold)
        if target != listing["target_qty"]:
            tx.conn.execute("UPDATE listings SET target_qty = ? WHERE id = ?", (target, listing["id"]))
        if listing["managed"] and listing["channel"] in PUSH_CHANNELS:
            sync_outbox(tx, listing["id"], listing["channel"], Field.QUANTITY, str(target))


def next_version(tx: Tx) -> int:
    """A new, strictly increasing outbox version."""
    row = tx.conn.execute(
        "UPDATE seq SET value = value + 1 WHERE name = 'outbox_version' RETURNING value"
    ).fetchone()
    return int(row[0])


def sync_outbox(tx: Tx, listing_id: int, channel: str, field: Field, desired: str) -> None:
    """Make the outbox hold `desired` for (listing, field) unless the channel already confirmed it.

    A newer desire replaces a pending older one in place (newest wins, one row per listing and
    field); the row keeps its creation time, so "oldest pending" measures how long the listing has
    been out of sync, and keeps its backoff, because failures belong to the channel, not the value.
    """
    found = tx.conn.execute(
        "SELECT (SELECT value FROM pushed WHERE listing_id = :id AND field = :f) AS confirmed,"
        " (SELECT value FROM outbox WHERE listing_id = :id AND field = :f) AS value,"
        " (SELECT state FROM outbox WHERE listing_id = :id AND field = :f) AS state",
        {"id": listing_id, "f": field.value},
    ).fetchone()
    already = found["confirmed"] == desired
    row = found if found["state"] is not None else None
    if row is None:
        if already:
            return
        tx.conn.execute(
            "INSERT INTO outbox(listing_id, field, channel, value, version, state, next_attempt, created_at)"
            " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
            (listing_id, field.value, channel, desired, next_version(tx), iso(tx.now), iso(tx.now)),
        )
    elif row["value"] == desired:
        return
    elif already and row["state"] == "pending":
        tx.conn.execute("DELETE FROM outbox WHERE listing_id = ? AND field = ?", (listing_id, field.value))
    else:
        tx.conn.execute(
            "UPDATE outbox SET value = ?, version = ? WHERE listing_id = ? AND field = ?",
            (desired, next_version(tx), listing_id, field.value),
        )
    tx.outbox_changed = True


def _raise_oversell(tx: Tx, sku: str, location: str, oversold_by: int) -> None:
    rows = tx.conn.execute(
        "SELECT l.channel, l.order_id, l.qty FROM order_lines l JOIN orders o USING (channel, order_id)"
        " WHERE l.sku = ? AND l.location = ? AND l.state IN ('committed', 'reserved')"
        " ORDER BY o.recorded DESC",
        (sku, location),
    ).fetchall()
    culprits, covered = [], 0
    for row in rows:
        if covered >= oversold_by:
            break
        culprits.append(f"{row['channel']}:{row['order_id']}")
        covered += row["qty"]
    raise_alert(
        tx,
        AlertKind.OVERSELL,
        f"{sku}@{location}",
        f"{sku} oversold by {oversold_by} at {location}; pushing 0 everywhere",
        sku=sku,
        detail={"oversold_by": oversold_by, "location": location, "orders": culprits},
    )
