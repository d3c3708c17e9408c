"""Recomputing the real available of touched products and the pushes that follow, inside a command.

Called at the end of every command that changes stock, in the same transaction, so an Amazon sale
lowers the MercadoLibre listing in the commit that records the sale.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from enum import Enum
from typing import NamedTuple

from syncd.domain.available import kit_available, listing_target, real_available
from syncd.domain.models import AlertKind, Availability, Field, ListingRule, StockFigures
from syncd.store.alerts import raise_alert
from syncd.store.writer import Tx

# Channels syncd sells on and pushes to; other channels (the 3PL) only map external ids.
PUSH_CHANNELS = frozenset({"amazon", "mercadolibre"})


def _figure_columns(pool: str) -> str:
    """On hand, committed, held, reserved and buffer of product `:sku` in the pool the SQL expression `pool` names."""
    return (
        f" (SELECT on_hand FROM stock WHERE sku = :sku AND location = {pool}) AS on_hand,"
        f" (SELECT SUM(qty) FROM order_lines WHERE sku = :sku AND location = {pool}"
        "   AND state = 'committed') AS committed,"
        " (SELECT SUM(l.qty) FROM order_lines l JOIN orders o USING (channel, order_id)"
        f"   WHERE l.sku = :sku AND l.location = {pool} AND l.state = 'reserved'"
        "   AND (o.hold_until IS NULL OR o.hold_until > :now)) AS held,"
        f" (SELECT SUM(qty) FROM reservations WHERE sku = :sku AND location = {pool}"
        "   AND released = 0 AND expires_at > :now) AS reserved,"
        " (SELECT safety_buffer FROM products WHERE sku = :sku) AS buffer"
    )


# The pools of a product: where it has stock, a listing or an open order line.
_POOLS = (
    "SELECT location FROM stock WHERE sku = :sku UNION SELECT location FROM listings WHERE sku = :sku"
    " UNION SELECT location FROM order_lines WHERE sku = :sku AND state IN ('committed', 'reserved')"
)
_FIGURES = "SELECT" + _figure_columns(":loc")
# Every pool of a product with its figures in one statement, rather than one to find the pools and
# one per pool. (Sorted in Python: an ORDER BY here costs SQLite a temporary b-tree per product.)
_POOL_FIGURES = f"SELECT pool.location AS location,{_figure_columns('pool.location')} FROM ({_POOLS}) AS pool"


def _figures_of(row: sqlite3.Row) -> StockFigures:
    return StockFigures(
        on_hand=row["on_hand"] or 0,
        committed=row["committed"] or 0,
        reserved=(row["held"] or 0) + (row["reserved"] or 0),
        buffer=row["buffer"] or 0,
    )


def figures(conn: sqlite3.Connection, sku: str, location: str, now: str) -> StockFigures:
    """On hand, committed, live reservations and buffer of one product in one pool."""
    return _figures_of(conn.execute(_FIGURES, {"sku": sku, "loc": location, "now": now}).fetchone())


def pool_figures(conn: sqlite3.Connection, sku: str, now: str) -> list[tuple[str, StockFigures]]:
    """`figures` of a product in each of its pools, ordered by location."""
    rows = conn.execute(_POOL_FIGURES, {"sku": sku, "now": now}).fetchall()
    return sorted(((row["location"], _figures_of(row)) for row in rows), key=lambda pool: pool[0])


def _locations_of(conn: sqlite3.Connection, sku: str) -> list[str]:
    return sorted(r["location"] for r in conn.execute(_POOLS, {"sku": sku}))


_STORE = (
    "INSERT INTO availability VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (sku, location) DO UPDATE SET on_hand = excluded.on_hand,"
    " committed = excluded.committed, reserved = excluded.reserved, buffer = excluded.buffer,"
    " available = excluded.available, oversold_by = excluded.oversold_by,"
    " updated_at = excluded.updated_at"
)


def _stored(tx: Tx, sku: str, location: str, fig: StockFigures, avail: Availability) -> tuple[object, ...]:
    """One availability row for `_STORE`."""
    return (sku, location, fig.on_hand, fig.committed, fig.reserved, fig.buffer, avail.available,
            avail.oversold_by, tx.stamp)


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
    computed: dict[tuple[str, str], Availability] = {}
    stored: list[tuple[object, ...]] = []  # availability rows, written together below
    for sku in simple:
        for location, fig in pool_figures(tx.conn, sku, tx.stamp):
            avail = real_available(fig)
            computed[(sku, location)] = avail
            stored.append(_stored(tx, sku, location, fig, avail))
            if avail.oversold:
                _raise_oversell(tx, sku, location, avail.oversold_by)
    for kit in kits:
        for location in _locations_of(tx.conn, kit):
            avail = Availability(available=_kit_available(tx, kit, location, computed), oversold_by=0)
            computed[(kit, location)] = avail
            stored.append(_stored(tx, kit, location, StockFigures(0, 0, 0, 0), avail))
    # Nothing in this function reads the availability table, so its rows can be written at the end.
    tx.conn.executemany(_STORE, stored)
    _retarget_listings(tx, [*simple, *kits], computed)
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
            computed[key] = real_available(figures(tx.conn, key[0], location, tx.stamp))
        pairs.append((computed[key].available, part["qty"]))
    return kit_available(pairs)


# The listings of many products, each with what the outbox and the channel hold for its quantity:
# everything `_retarget_listings` needs in one statement for the whole batch.
_LISTINGS = (
    "SELECT l.id, l.sku, l.channel, l.location, l.cap, l.share, l.paused, l.managed, l.target_qty,"
    " p.value AS confirmed, o.value AS queued, o.state AS queued_state"
    " FROM listings l"
    " LEFT JOIN pushed p ON p.listing_id = l.id AND p.field = 'quantity'"
    " LEFT JOIN outbox o ON o.listing_id = l.id AND o.field = 'quantity'"
    " WHERE l.sku IN (SELECT value FROM json_each(?)) ORDER BY l.id"
)


def _retarget_listings(tx: Tx, skus: list[str], computed: dict[tuple[str, str], Availability]) -> None:
    """Give every listing of `skus` its target and make the outbox want it (products in `skus` order)."""
    if not skus:
        return
    by_sku: dict[str, list[sqlite3.Row]] = {}
    for row in tx.conn.execute(_LISTINGS, (json.dumps(skus),)):
        by_sku.setdefault(row["sku"], []).append(row)
    retargeted: list[tuple[int, int]] = []
    wanted: list[_Desire] = []
    for sku in skus:
        for listing in by_sku.get(sku, ()):
            avail = computed.get((sku, listing["location"]), Availability(0, 0))
            rule = ListingRule(share=listing["share"], cap=listing["cap"], paused=bool(listing["paused"]))
            target = listing_target(avail.available, rule, oversold=avail.oversold)
            if target != listing["target_qty"]:
                retargeted.append((target, listing["id"]))
            if listing["managed"] and listing["channel"] in PUSH_CHANNELS:
                step = _outbox_step(listing["confirmed"], listing["queued"], listing["queued_state"], str(target))
                if step is not _Step.KEEP:
                    wanted.append(_Desire(listing["id"], listing["channel"], str(target), step))
    tx.conn.executemany("UPDATE listings SET target_qty = ? WHERE id = ?", retargeted)
    _write_outbox(tx, Field.QUANTITY, wanted)


def next_version(tx: Tx, count: int = 1) -> int:
    """The first of `count` new, strictly increasing outbox versions."""
    row = tx.conn.execute(
        "UPDATE seq SET value = value + ? WHERE name = 'outbox_version' RETURNING value", (count,)
    ).fetchone()
    return int(row[0]) - count + 1


class _Step(Enum):
    """What the outbox row of one (listing, field) needs so that it wants a value."""

    KEEP = "keep"
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


class _Desire(NamedTuple):
    listing_id: int
    channel: str
    value: str
    step: _Step


def _outbox_step(confirmed: str | None, queued: str | None, queued_state: str | None, desired: str) -> _Step:
    """The rule of `sync_outbox`, given the confirmed value and the outbox row (None when there is none)."""
    already = confirmed == desired
    if queued_state is None:  # no row
        return _Step.KEEP if already else _Step.INSERT
    if queued == desired:
        return _Step.KEEP
    if already and queued_state == "pending":
        return _Step.DELETE
    return _Step.UPDATE


def _write_outbox(tx: Tx, field: Field, desires: list[_Desire]) -> None:
    """Carry out outbox steps, with versions in `desires` order (one sequence bump for all of them)."""
    if not desires:
        return
    versioned = sum(1 for d in desires if d.step is not _Step.DELETE)
    version = next_version(tx, versioned) if versioned else 0
    inserts, updates, deletes = [], [], []
    for d in desires:
        if d.step is _Step.DELETE:
            deletes.append((d.listing_id, field.value))
            continue
        if d.step is _Step.INSERT:
            inserts.append((d.listing_id, field.value, d.channel, d.value, version, tx.stamp, tx.stamp))
        else:
            updates.append((d.value, version, d.listing_id, field.value))
        version += 1
    tx.conn.executemany(
        "INSERT INTO outbox(listing_id, field, channel, value, version, state, next_attempt, created_at)"
        " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)", inserts)
    tx.conn.executemany("UPDATE outbox SET value = ?, version = ? WHERE listing_id = ? AND field = ?", updates)
    tx.conn.executemany("DELETE FROM outbox WHERE listing_id = ? AND field = ?", deletes)
    tx.outbox_changed = True


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
    step = _outbox_step(found["confirmed"], found["value"], found["state"], desired)
    if step is not _Step.KEEP:
        _write_outbox(tx, field, [_Desire(listing_id, channel, desired, step)])


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
