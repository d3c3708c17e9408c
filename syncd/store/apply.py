"""Applying captured events: the inbox row and the event's effect land in one transaction."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, cast

from syncd.capture.events import (
    Adjustment,
    Event,
    ListingObservation,
    ListingPause,
    Notification,
    OrderUpsert,
    PriceSet,
    Receipt,
    Shipment,
    StockCount,
)
from syncd.domain.counts import AcceptedCount, CountVerdict, judge_count, rebased_on_hand
from syncd.domain.models import (
    LINE_STATE_FOR_ORDER,
    AlertKind,
    Field,
    LineState,
    ListingStatus,
    MovementReason,
)
from syncd.domain.orders import ships_now, update_applies
from syncd.store.alerts import raise_alert
from syncd.store.stockcalc import PUSH_CHANNELS, sync_outbox, touch
from syncd.store.timefmt import iso, parse
from syncd.store.writer import Tx


class Rejected(Exception):
    """Input that cannot be applied (unknown SKU, bad location, ...); nothing of it is written."""

    def __init__(self, reason: str, detail: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class Outcome(StrEnum):
    """What became of one event."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"  # valid but superseded: an older order update, a refused count
    PENDING_FETCH = "pending_fetch"
    FAILED = "failed"  # kept in the inbox with its error and an alert; never silently dropped


@dataclass(frozen=True, slots=True)
class Policy:
    """Knobs the apply rules need from the configuration."""

    authority_window: timedelta = timedelta(hours=1)
    drift_alert_threshold: int = 2
    # Observations this soon after a push are not judged: marketplaces apply updates lazily.
    observation_grace: timedelta = timedelta(seconds=120)


@dataclass(slots=True)
class Result:
    """The outcome of one event and anything the caller should show."""

    outcome: Outcome
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def ingest(tx: Tx, event: Event, policy: Policy, strict: bool = False) -> Result:
    """Record `event` in the inbox (a duplicate is a no-op) and apply it.

    With `strict` (the seller's own actions), a rejection raises `Rejected` so nothing is written
    and the caller answers 4xx. Otherwise (channel reports) the event is kept as failed, with an
    alert: an accepted delivery is never lost, even when syncd cannot use it yet.
    """
    body = event.body
    state = "pending_fetch" if isinstance(body, Notification) else "applied"
    cur = tx.conn.execute(
        "INSERT OR IGNORE INTO inbox(dedupe_key, source, kind, payload, state, received_at, applied_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (event.dedupe_key, event.source, body.kind, event.model_dump_json(), state,
         iso(event.received_at), tx.stamp),
    )
    if cur.rowcount == 0:
        return Result(Outcome.DUPLICATE)
    inbox_id = cur.lastrowid
    if isinstance(body, Notification):
        tx.notifications_stored = True
        return Result(Outcome.PENDING_FETCH, data={"inbox_id": inbox_id})
    try:
        tx.conn.execute("SAVEPOINT apply")
        result = apply_body(tx, body, policy)
        tx.conn.execute("RELEASE apply")
    except Rejected as err:
        tx.conn.execute("ROLLBACK TO apply")
        tx.conn.execute("RELEASE apply")
        if strict:
            raise
        tx.conn.execute(
            "UPDATE inbox SET state = 'failed', error = ? WHERE id = ?", (err.reason, inbox_id)
        )
        raise_alert(tx, AlertKind.UNKNOWN_LISTING, event.dedupe_key, f"{event.source}: {err.reason}",
                    channel=event.source, detail={"event": event.dedupe_key, "detail": err.detail})
        return Result(Outcome.FAILED, err.reason)
    if result.outcome is Outcome.IGNORED:
        tx.conn.execute(
            "UPDATE inbox SET state = 'ignored', error = ? WHERE id = ?", (result.detail, inbox_id)
        )
    return result


def apply_body(tx: Tx, body: Any, policy: Policy) -> Result:
    """Dispatch one event body to its rule."""
    if isinstance(body, OrderUpsert):
        return _order(tx, body, policy)
    if isinstance(body, StockCount):
        return _count(tx, body, policy)
    if isinstance(body, Receipt):
        return _movement(tx, body.sku, body.location, body.qty, MovementReason.RECEIPT, body.ref, body.at, policy)
    if isinstance(body, Adjustment):
        return _movement(tx, body.sku, body.location, body.delta, MovementReason.MANUAL, body.reason, body.at, policy)
    if isinstance(body, Shipment):
        return _shipment(tx, body, policy)
    if isinstance(body, PriceSet):
        return _price(tx, body)
    if isinstance(body, ListingPause):
        return _pause(tx, body)
    if isinstance(body, ListingObservation):
        return _observation(tx, body, policy)
    raise Rejected(f"unsupported event kind {getattr(body, 'kind', '?')}")


def _product(conn: sqlite3.Connection, sku: str) -> sqlite3.Row:
    row = conn.execute("SELECT sku, is_kit, safety_buffer FROM products WHERE sku = ?", (sku,)).fetchone()
    if row is None:
        raise Rejected(f"unknown SKU {sku!r}")
    return cast(sqlite3.Row, row)


def _location(conn: sqlite3.Connection, location: str) -> sqlite3.Row:
    row = conn.execute("SELECT id, sources FROM locations WHERE id = ?", (location,)).fetchone()
    if row is None:
        raise Rejected(f"unknown location {location!r}")
    return cast(sqlite3.Row, row)


def find_listing(conn: sqlite3.Connection, channel: str, external_id: str, variation_id: str | None) -> sqlite3.Row:
    """The listing a channel names; a missing variation matches an item with exactly one listing."""
    rows = conn.execute(
        "SELECT * FROM listings WHERE channel = ? AND external_id = ?", (channel, external_id)
    ).fetchall()
    wanted = variation_id or ""
    exact = [r for r in rows if r["variation_id"] == wanted]
    if exact:
        return cast(sqlite3.Row, exact[0])
    if not variation_id and len(rows) == 1:
        return cast(sqlite3.Row, rows[0])
    raise Rejected(
        f"unknown listing {channel}/{external_id}" + (f"/{variation_id}" if variation_id else ""),
        {"channel": channel, "external_id": external_id, "variation_id": variation_id},
    )


def _ensure_stock(conn: sqlite3.Connection, sku: str, location: str) -> int:
    conn.execute("INSERT OR IGNORE INTO stock(sku, location, on_hand) VALUES (?, ?, 0)", (sku, location))
    row = conn.execute("SELECT on_hand FROM stock WHERE sku = ? AND location = ?", (sku, location)).fetchone()
    return int(row[0])


def _move(tx: Tx, sku: str, location: str, delta: int, reason: MovementReason, ref: str, at: str,
          policy: Policy, ensured: bool = False) -> bool:
    """Write one ledger movement and apply it to on hand; False when a shipment ref was already moved."""
    if not ensured:
        _ensure_stock(tx.conn, sku, location)
    cur = tx.conn.execute(
        "INSERT OR IGNORE INTO ledger(sku, location, delta, reason, ref, at, recorded) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (sku, location, delta, reason.value, ref, at, tx.stamp),
    )
    if cur.rowcount == 0:
        return False
    if reason is MovementReason.COUNT:
        tx.conn.execute("UPDATE stock SET on_hand = on_hand + ? WHERE sku = ? AND location = ?",
                        (delta, sku, location))
        return True
    # On hand moves unless a count taken after the movement happened already holds it. The stock row
    # exists (ensured above), so no row updated means exactly that: _seen_by_count balances it.
    # Text comparison of store-form times is time order, as in _seen_by_count's `at > counted_as_of`.
    moved = tx.conn.execute(
        "UPDATE stock SET on_hand = on_hand + ? WHERE sku = ? AND location = ?"
        " AND (counted_as_of IS NULL OR counted_as_of < ?)",
        (delta, sku, location, at),
    ).rowcount
    if not moved:
        _seen_by_count(tx, sku, location, delta, ref, at, policy)
    return True


def _seen_by_count(tx: Tx, sku: str, location: str, delta: int, ref: str, at: str, policy: Policy) -> bool:
    """A movement reported after a count taken later than it happened is already in that count.

    The 3PL's receipt poll may trail its stock poll: applying the receipt again would count the
    goods twice. The movement stays in the ledger (history), balanced by a `count` row, on hand is
    untouched, and the count's drift is re-explained; a drift alert it explains away is closed.
    """
    row = tx.conn.execute(
        "SELECT counted_as_of FROM stock WHERE sku = ? AND location = ?", (sku, location)
    ).fetchone()
    if row is None or row[0] is None or at > row[0]:
        return False
    tx.conn.execute(
        "INSERT INTO ledger(sku, location, delta, reason, ref, at, recorded) VALUES (?, ?, ?, 'count', ?, ?, ?)",
        (sku, location, -delta, f"seen-by-count:{ref}", row[0], tx.stamp),
    )
    count = tx.conn.execute(
        "SELECT id, drift FROM counts WHERE sku = ? AND location = ? AND verdict = 'accepted' AND as_of >= ?"
        " ORDER BY as_of LIMIT 1", (sku, location, at),
    ).fetchone()
    if count is not None and count["drift"] is not None:
        left = count["drift"] - delta
        tx.conn.execute("UPDATE counts SET drift = ? WHERE id = ?", (left, count["id"]))
        if abs(left) < policy.drift_alert_threshold:
            tx.conn.execute(
                "UPDATE alerts SET acked_at = ?, message = message || ' (explained by ' || ? || ')'"
                " WHERE kind = 'drift' AND key = ? AND acked_at IS NULL",
                (tx.stamp, ref, f"{sku}@{location}"),
            )
    return True


def _movement(
    tx: Tx, sku: str, location: str, delta: int, reason: MovementReason, ref: str, at: Any, policy: Policy
) -> Result:
    # The product, the location and the pool's on hand in one read (the hot path of receipts).
    row = tx.conn.execute(
        "SELECT p.is_kit, EXISTS (SELECT 1 FROM locations WHERE id = :loc) AS known_location, s.on_hand"
        " FROM products p LEFT JOIN stock s ON s.sku = p.sku AND s.location = :loc WHERE p.sku = :sku",
        {"sku": sku, "loc": location},
    ).fetchone()
    if row is None:
        raise Rejected(f"unknown SKU {sku!r}")
    if row["is_kit"]:
        raise Rejected(f"{sku} is a kit: move its components instead")
    if not row["known_location"]:
        raise Rejected(f"unknown location {location!r}")
    on_hand = row["on_hand"]
    if on_hand is None:
        on_hand = _ensure_stock(tx.conn, sku, location)
    # A seller's adjustment may not take on hand below 0; a channel's report of goods that moved is
    # physical truth and is applied even when syncd's on hand was wrong (the next count rebases it).
    if reason is MovementReason.MANUAL and on_hand + delta < 0:
        raise Rejected(f"{sku} at {location}: on hand {on_hand} cannot move by {delta}")
    _move(tx, sku, location, delta, reason, ref, iso(at), policy, ensured=True)
    touch(tx, [sku])
    return Result(Outcome.APPLIED, data={"on_hand": on_hand + delta})


def _order(tx: Tx, body: OrderUpsert, policy: Policy) -> Result:
    stored = tx.conn.execute(
        "SELECT last_updated FROM orders WHERE channel = ? AND order_id = ?", (body.channel, body.order_id)
    ).fetchone()
    if stored is not None and not update_applies(body.last_updated, parse(stored["last_updated"])):
        return Result(Outcome.IGNORED, f"order update {body.last_updated.isoformat()} is not newer than stored")
    new_state = LINE_STATE_FOR_ORDER[body.state]
    # Resolve every line before writing anything: an unknown listing rejects the whole update.
    resolved: list[tuple[str, str, str | None, str, int, int]] = []
    for line in body.lines:
        listing = find_listing(tx.conn, body.channel, line.external_id, line.variation_id)
        product = _product(tx.conn, listing["sku"])
        if product["is_kit"]:
            for part in tx.conn.execute(
                "SELECT component_sku, qty FROM kit_components WHERE kit_sku = ?", (listing["sku"],)
            ):
                resolved.append((line.line_id, part["component_sku"], listing["sku"], listing["location"],
                                 part["qty"] * line.qty, listing["id"]))
        else:
            resolved.append((line.line_id, listing["sku"], None, listing["location"], line.qty, listing["id"]))
    tx.conn.execute(
        "INSERT INTO orders(channel, order_id, state, last_updated, created_at, hold_until, recorded)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel, order_id) DO UPDATE SET state = excluded.state,"
        " last_updated = excluded.last_updated, hold_until = excluded.hold_until",
        (body.channel, body.order_id, body.state.value, iso(body.last_updated),
         iso(body.created_at) if body.created_at else None,
         iso(body.hold_until) if body.hold_until else None, tx.stamp),
    )
    ref = f"{body.channel}:{body.order_id}"
    shipped: dict[tuple[str, str], int] = {}
    # (listing, ordered units, previous line state) once per channel line, for _follow_marketplace.
    resolved_lines: dict[tuple[str, int], tuple[int, LineState | None]] = {}
    for line_id, sku, kit_sku, location, qty, listing_id in resolved:
        old = tx.conn.execute(
            "SELECT state FROM order_lines WHERE channel = ? AND order_id = ? AND line_id = ? AND sku = ?",
            (body.channel, body.order_id, line_id, sku),
        ).fetchone()
        old_state = LineState(old["state"]) if old else None
        line_state = new_state
        if new_state in (LineState.RESERVED, LineState.COMMITTED) and _shipped(tx.conn, sku, location, ref):
            line_state = LineState.SHIPPED  # the 3PL reported the goods gone before the channel did
        tx.conn.execute(
            "INSERT INTO order_lines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (channel, order_id, line_id, sku) DO UPDATE SET state = excluded.state,"
            " qty = excluded.qty",
            (body.channel, body.order_id, line_id, sku, kit_sku, location, qty, line_state.value, listing_id),
        )
        units = qty // _kit_part_qty(tx.conn, kit_sku, sku) if kit_sku else qty
        resolved_lines.setdefault((line_id, listing_id), (units, old_state))
        if ships_now(old_state, line_state) and old_state is not LineState.CANCELLED:
            shipped[(sku, location)] = shipped.get((sku, location), 0) + qty
    for (sku, location), qty in shipped.items():
        _move(tx, sku, location, -qty, MovementReason.SHIPMENT, ref, iso(body.last_updated), policy)
    _follow_marketplace(tx, resolved_lines, new_state)
    touch(tx, {sku for _, sku, *_ in resolved})
    return Result(Outcome.APPLIED, data={"state": body.state.value})


def _kit_part_qty(conn: sqlite3.Connection, kit_sku: str, component: str) -> int:
    row = conn.execute(
        "SELECT qty FROM kit_components WHERE kit_sku = ? AND component_sku = ?", (kit_sku, component)
    ).fetchone()
    return int(row[0]) if row else 1


def _follow_marketplace(
    tx: Tx, lines: dict[tuple[str, int], tuple[int, LineState | None]], new_state: LineState
) -> None:
    """Track what the selling listing now shows: a marketplace takes sold units off its own listing
    (and gives them back on cancellation), so syncd need not push that change to it again."""
    for (_, listing_id), (units, old_state) in lines.items():
        if old_state is None and new_state is not LineState.CANCELLED:
            delta = -units
        elif old_state in (LineState.RESERVED, LineState.COMMITTED) and new_state is LineState.CANCELLED:
            delta = units
        else:
            continue
        tx.conn.execute(
            "UPDATE pushed SET value = CAST(MAX(0, CAST(value AS INTEGER) + ?) AS TEXT), at = ?"
            " WHERE listing_id = ? AND field = 'quantity'",
            (delta, tx.stamp, listing_id),
        )


def _shipped(conn: sqlite3.Connection, sku: str, location: str, ref: str) -> bool:
    return conn.execute(
        "SELECT 1 FROM ledger WHERE sku = ? AND location = ? AND ref = ? AND reason = 'shipment'", (sku, location, ref)
    ).fetchone() is not None


def _shipment(tx: Tx, body: Shipment, policy: Policy) -> Result:
    if (sku := resolve_sku(tx.conn, body.sku, "threepl")) != body.sku:
        body = body.model_copy(update={"sku": sku})
    _product(tx.conn, body.sku)
    _location(tx.conn, body.location)
    ref = body.order_ref or body.ref
    moved = _move(tx, body.sku, body.location, -body.qty, MovementReason.SHIPMENT, ref, iso(body.at), policy)
    released = 0
    if body.order_ref and ":" in body.order_ref:
        channel, order_id = body.order_ref.split(":", 1)
        released = tx.conn.execute(
            "UPDATE order_lines SET state = 'shipped' WHERE channel = ? AND order_id = ? AND sku = ?"
            " AND state IN ('committed', 'reserved')",
            (channel, order_id, body.sku),
        ).rowcount
    if not moved and not released:
        return Result(Outcome.IGNORED, f"shipment {ref} of {body.sku} already moved on hand")
    touch(tx, [body.sku])
    return Result(Outcome.APPLIED, data={"moved": moved, "released_lines": released})


def resolve_sku(conn: sqlite3.Connection, sku: str, source: str) -> str:
    """A master SKU, or the SKU a channel calls it by (its listing's external id) mapped to one."""
    if conn.execute("SELECT 1 FROM products WHERE sku = ?", (sku,)).fetchone():
        return sku
    row = conn.execute(
        "SELECT DISTINCT sku FROM listings WHERE channel = ? AND external_id = ?", (source, sku)
    ).fetchall()
    if len(row) == 1:
        return str(row[0][0])
    raise Rejected(f"unknown SKU {sku!r}" + (f" (no {source} listing maps it)" if source != "manual" else ""))


def _count(tx: Tx, body: StockCount, policy: Policy) -> Result:
    if (sku := resolve_sku(tx.conn, body.sku, body.source)) != body.sku:
        body = body.model_copy(update={"sku": sku})
    product = _product(tx.conn, body.sku)
    if product["is_kit"]:
        raise Rejected(f"{body.sku} is a kit: count its components instead")
    location = _location(tx.conn, body.location)
    sources: list[str] = json.loads(location["sources"])
    history = [
        AcceptedCount(source=r["source"], as_of=parse(r["as_of"]) or tx.now)
        for r in tx.conn.execute(
            "SELECT source, MAX(as_of) AS as_of FROM counts WHERE sku = ? AND location = ?"
            " AND verdict = 'accepted' GROUP BY source",
            (body.sku, body.location),
        )
    ]
    verdict = judge_count(body.source, body.as_of, sources, history, policy.authority_window)
    on_hand = _ensure_stock(tx.conn, body.sku, body.location)
    drift, first = None, False
    if verdict is CountVerdict.ACCEPTED:
        after = [r[0] for r in tx.conn.execute(
            "SELECT delta FROM ledger WHERE sku = ? AND location = ? AND at > ? AND reason != 'count'",
            (body.sku, body.location, iso(body.as_of)))]
        drift = rebased_on_hand(body.qty, after) - on_hand
        first = not any(h.source for h in history)
    cur = tx.conn.execute(
        "INSERT INTO counts(sku, location, qty, as_of, source, verdict, drift, recorded)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (body.sku, body.location, body.qty, iso(body.as_of), body.source, verdict.value, drift, tx.stamp),
    )
    if verdict is not CountVerdict.ACCEPTED:
        return Result(Outcome.IGNORED, f"count {verdict.value}", {"verdict": verdict.value})
    assert drift is not None
    if drift:
        _move(tx, body.sku, body.location, drift, MovementReason.COUNT, f"count:{cur.lastrowid}", iso(body.as_of),
              policy)
        # The first count of a pool sets its stock; only later disagreements are drift worth an alert.
        if abs(drift) >= policy.drift_alert_threshold and not first:
            raise_alert(tx, AlertKind.DRIFT, f"{body.sku}@{body.location}",
                        f"{body.sku} at {body.location}: count by {body.source} moved on hand by {drift:+d}",
                        sku=body.sku, detail={"drift": drift, "source": body.source, "count": body.qty})
    tx.conn.execute(
        "UPDATE stock SET counted_qty = ?, counted_as_of = ?, counted_source = ? WHERE sku = ? AND location = ?",
        (body.qty, iso(body.as_of), body.source, body.sku, body.location),
    )
    touch(tx, [body.sku])
    return Result(Outcome.APPLIED, data={"verdict": verdict.value, "drift": drift, "on_hand": on_hand + drift})


def _price(tx: Tx, body: PriceSet) -> Result:
    _product(tx.conn, body.sku)
    price = str(body.price)
    if body.channel is None:
        tx.conn.execute("UPDATE products SET price = ? WHERE sku = ?", (price, body.sku))
    rows = tx.conn.execute(
        "SELECT id, channel FROM listings WHERE sku = ? AND (? IS NULL OR channel = ?)",
        (body.sku, body.channel, body.channel),
    ).fetchall()
    pushable = [r for r in rows if r["channel"] in PUSH_CHANNELS]
    if not pushable:
        raise Rejected(f"{body.sku} has no listing" + (f" on {body.channel}" if body.channel else ""))
    for row in pushable:
        tx.conn.execute("UPDATE listings SET price = ? WHERE id = ?", (price, row["id"]))
        sync_outbox(tx, row["id"], row["channel"], Field.PRICE, price)
    return Result(Outcome.APPLIED, data={"listings": len(pushable)})


def _pause(tx: Tx, body: ListingPause) -> Result:
    listing = find_listing(tx.conn, body.channel, body.external_id, body.variation_id)
    tx.conn.execute("UPDATE listings SET paused = ? WHERE id = ?", (int(body.paused), listing["id"]))
    if listing["channel"] in PUSH_CHANNELS:
        status = ListingStatus.PAUSED if body.paused else ListingStatus.ACTIVE
        sync_outbox(tx, listing["id"], listing["channel"], Field.STATUS, status.value)
    touch(tx, [listing["sku"]])
    return Result(Outcome.APPLIED, data={"paused": body.paused})


def _observation(tx: Tx, body: ListingObservation, policy: Policy) -> Result:
    listing = find_listing(tx.conn, body.channel, body.external_id, body.variation_id)
    tx.conn.execute(
        "UPDATE listings SET observed_qty = COALESCE(?, observed_qty), observed_price = COALESCE(?, observed_price),"
        " observed_status = COALESCE(?, observed_status), observed_at = ? WHERE id = ?",
        (body.quantity, str(body.price) if body.price is not None else None, body.status, iso(body.at),
         listing["id"]),
    )
    if body.quantity is None or not listing["managed"] or listing["channel"] not in PUSH_CHANNELS:
        return Result(Outcome.APPLIED)
    if body.quantity == listing["target_qty"]:
        tx.conn.execute("UPDATE listings SET matched_at = ?, mismatch_since = NULL WHERE id = ?",
                        (iso(body.at), listing["id"]))
        return Result(Outcome.APPLIED, data={"matched": True})
    return _judge_drift(tx, listing, body, policy)


def _judge_drift(tx: Tx, listing: sqlite3.Row, body: ListingObservation, policy: Policy) -> Result:
    """Repair a listing that shows what syncd did not cause, once the difference has persisted.

    `pushed` follows the listing's own sales (see _follow_marketplace), so it is what the channel
    should show. A difference is only noted at first: the sale that explains it may still be on its
    way (marketplaces notify quantity changes and orders separately). If it persists past the grace
    period, the confirmation is forgotten and the target pushed again.
    """
    pushed = tx.conn.execute(
        "SELECT value, at FROM pushed WHERE listing_id = ? AND field = 'quantity'", (listing["id"],)
    ).fetchone()
    if pushed is None or body.quantity == int(pushed["value"]):
        tx.conn.execute("UPDATE listings SET mismatch_since = NULL WHERE id = ?", (listing["id"],))
        return Result(Outcome.APPLIED, "consistent with the last push")
    expected = int(pushed["value"])
    since = parse(listing["mismatch_since"])
    if since is None or body.at - since < policy.observation_grace:
        if since is None:
            tx.conn.execute("UPDATE listings SET mismatch_since = ? WHERE id = ?", (iso(body.at), listing["id"]))
        return Result(Outcome.APPLIED, "difference noted; judged if it persists",
                      {"observed": body.quantity, "expected": expected})
    tx.conn.execute("UPDATE listings SET mismatch_since = NULL WHERE id = ?", (listing["id"],))
    tx.conn.execute("DELETE FROM pushed WHERE listing_id = ? AND field = 'quantity'", (listing["id"],))
    sync_outbox(tx, listing["id"], listing["channel"], Field.QUANTITY, str(listing["target_qty"]))
    raise_alert(tx, AlertKind.DRIFT, f"listing:{listing['id']}",
                f"{listing['channel']} {listing['external_id']} shows {body.quantity}, expected {expected}; re-pushing",
                sku=listing["sku"], channel=listing["channel"],
                detail={"observed": body.quantity, "expected": expected, "target": listing["target_qty"]})
    return Result(Outcome.APPLIED, "drift repaired", {"observed": body.quantity, "expected": expected})
