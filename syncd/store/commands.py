"""Writer commands other than event application: reservations, push outcomes, polls, tokens, catalog."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from syncd.capture.events import Event
from syncd.domain.available import real_available
from syncd.domain.catalog import CatalogPlan
from syncd.domain.models import AlertKind, Field
from syncd.push.backoff import retry_delay
from syncd.store.alerts import raise_alert
from syncd.store.apply import Outcome, Policy, Rejected, Result, ingest
from syncd.store.stockcalc import figures, sync_outbox, touch
from syncd.store.timefmt import iso
from syncd.store.writer import Tx


class Conflict(Exception):
    """A request that is valid but cannot be granted now (not enough stock)."""

    def __init__(self, reason: str, detail: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


# ---- reservations -------------------------------------------------------------------------------


def reserve(tx: Tx, sku: str, qty: int, ttl_seconds: int, location: str | None = None) -> dict[str, Any]:
    """Grant a hold only if `available ≥ qty` in one transaction; raise Conflict otherwise."""
    if qty <= 0:
        raise Rejected("qty must be a positive whole number")
    if ttl_seconds <= 0:
        raise Rejected("ttl_seconds must be positive")
    product = tx.conn.execute("SELECT is_kit FROM products WHERE sku = ?", (sku,)).fetchone()
    if product is None:
        raise Rejected(f"unknown SKU {sku!r}")
    if product["is_kit"]:
        raise Rejected(f"{sku} is a kit: reserve its components")
    now = tx.stamp
    pools = [location] if location else [r[0] for r in tx.conn.execute(
        "SELECT location FROM stock WHERE sku = ? ORDER BY location", (sku,))]
    best: tuple[int, str] | None = None
    for pool in pools:
        avail = real_available(figures(tx.conn, sku, pool, now)).available
        if best is None or avail > best[0]:
            best = (avail, pool)
    if best is None or best[0] < qty:
        raise Conflict(f"only {best[0] if best else 0} of {sku} available", {"available": best[0] if best else 0})
    reservation_id = "res_" + secrets.token_hex(8)
    expires = tx.now + timedelta(seconds=ttl_seconds)
    tx.conn.execute(
        "INSERT INTO reservations(id, sku, location, qty, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (reservation_id, sku, best[1], qty, iso(expires), now),
    )
    touch(tx, [sku])
    return {"id": reservation_id, "sku": sku, "location": best[1], "qty": qty, "expires_at": iso(expires)}


def release(tx: Tx, reservation_id: str) -> bool:
    """Release a live reservation; False when there is none with that id."""
    row = tx.conn.execute(
        "SELECT sku FROM reservations WHERE id = ? AND released = 0", (reservation_id,)
    ).fetchone()
    if row is None:
        return False
    tx.conn.execute("UPDATE reservations SET released = 1 WHERE id = ?", (reservation_id,))
    touch(tx, [row["sku"]])
    return True


def sweep_holds(tx: Tx, since: datetime) -> int:
    """Recompute products whose holds lapsed since the last sweep; return how many."""
    lo, hi = iso(since), tx.stamp
    skus = {r[0] for r in tx.conn.execute(
        "SELECT sku FROM reservations WHERE released = 0 AND expires_at > ? AND expires_at <= ?", (lo, hi))}
    skus |= {r[0] for r in tx.conn.execute(
        "SELECT l.sku FROM order_lines l JOIN orders o USING (channel, order_id)"
        " WHERE l.state = 'reserved' AND o.hold_until > ? AND o.hold_until <= ?", (lo, hi))}
    if skus:
        touch(tx, skus)
    return len(skus)


# ---- events from polls and notifications --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """How a poll's events fared."""

    results: list[Result]

    @property
    def applied(self) -> int:
        """Events that changed something."""
        return sum(1 for r in self.results if r.outcome is Outcome.APPLIED)


def ingest_poll(
    tx: Tx,
    channel: str,
    resource: str,
    events: Iterable[Event],
    cursor: str | None,
    complete_through: datetime | None,
    policy: Policy,
) -> PollOutcome:
    """Apply a poll's events and advance its cursor in the same transaction: a crash replays both."""
    results = [ingest(tx, event, policy) for event in events]
    row = _channel_row(tx, channel)
    cursors = json.loads(row["cursors"])
    if cursor is not None:
        cursors[resource] = cursor
    tx.conn.execute(
        # last_success only moves forward: a slow resource's older horizon must not hide a newer one.
        "UPDATE channel_state SET cursors = ?, last_success = MAX(COALESCE(last_success, ''), ?), last_attempt = ?,"
        " consecutive_failures = 0, last_error = NULL WHERE channel = ?",
        (json.dumps(cursors), iso(complete_through or tx.now), tx.stamp, channel),
    )
    return PollOutcome(results)


def resolve_notification(tx: Tx, inbox_ids: list[int], events: Iterable[Event], policy: Policy) -> PollOutcome:
    """Apply what fetched pointers resolved to and mark the pointers done."""
    results = [ingest(tx, event, policy) for event in events]
    tx.conn.executemany(
        "UPDATE inbox SET state = 'applied', applied_at = ?, attempts = attempts + 1 WHERE id = ?",
        [(tx.stamp, inbox_id) for inbox_id in inbox_ids],
    )
    return PollOutcome(results)


def notification_failed(tx: Tx, inbox_ids: list[int], error: str, give_up: bool, retry_in: float) -> None:
    """Count a failed fetch and schedule the next; a pointer given up on is kept as failed, with an alert."""
    tx.conn.executemany(
        "UPDATE inbox SET attempts = attempts + 1, error = ?, next_attempt = ?,"
        " state = CASE WHEN ? THEN 'failed' ELSE state END WHERE id = ?",
        [(error[:500], iso(tx.now + timedelta(seconds=retry_in)), give_up, inbox_id) for inbox_id in inbox_ids],
    )
    if give_up:
        raise_alert(tx, AlertKind.FETCH_FAILED, f"inbox:{inbox_ids[0]}",
                    f"could not fetch notification: {error[:200]}", detail={"inbox_ids": inbox_ids})


def _channel_row(tx: Tx, channel: str) -> Any:
    tx.conn.execute("INSERT OR IGNORE INTO channel_state(channel) VALUES (?)", (channel,))
    return tx.conn.execute("SELECT * FROM channel_state WHERE channel = ?", (channel,)).fetchone()


def channel_failure(tx: Tx, channel: str, error: str, rate_limited_until: datetime | None = None) -> int:
    """Record a failed poll or push; return the consecutive failure count."""
    _channel_row(tx, channel)
    tx.conn.execute(
        "UPDATE channel_state SET consecutive_failures = consecutive_failures + 1, last_error = ?,"
        " last_attempt = ?, rate_limited_until = COALESCE(?, rate_limited_until) WHERE channel = ?",
        (error[:500], tx.stamp, iso(rate_limited_until) if rate_limited_until else None, channel),
    )
    row = tx.conn.execute("SELECT consecutive_failures FROM channel_state WHERE channel = ?", (channel,)).fetchone()
    return int(row[0])


def channel_reachable(tx: Tx, channel: str) -> None:
    """A call to the channel worked: it is not down, whatever it said."""
    _channel_row(tx, channel)
    tx.conn.execute(
        "UPDATE channel_state SET consecutive_failures = 0, last_error = NULL, last_attempt = ? WHERE channel = ?",
        (tx.stamp, channel),
    )


def channel_health(tx: Tx, channel: str, state: str, detail: dict[str, Any]) -> None:
    """Open a stale-channel alert when a channel stops being ok; close it when it is ok again."""
    if state != "ok":
        raise_alert(tx, AlertKind.STALE_CHANNEL, channel,
                    f"{channel} is {state}: data {detail.get('lag_seconds', 0):.0f} s old,"
                    f" {detail.get('queue_depth', 0)} pushes waiting", channel=channel, detail=detail)
        return
    tx.conn.execute(
        "UPDATE alerts SET acked_at = ?, message = message || ' (recovered)'"
        " WHERE kind = 'stale_channel' AND key = ? AND acked_at IS NULL",
        (tx.stamp, channel),
    )


# ---- push outcomes ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Outbox retry knobs (config [outbox])."""

    base: float = 1.0
    cap: float = 300.0
    max_attempts: int = 12
    deferral_budget: int = 50


def _log_push(tx: Tx, listing_id: int, field: str, value: str, version: int, outcome: str, detail: str = "") -> None:
    tx.conn.execute(
        "INSERT INTO push_log(listing_id, field, value, version, outcome, detail, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (listing_id, field, value, version, outcome, detail[:500] or None, tx.stamp),
    )


def push_succeeded(tx: Tx, channel: str, listing_id: int, field: Field, value: str, version: int) -> None:
    """The channel confirmed `value`: record it unless a newer confirmation exists; retire the row."""
    tx.conn.execute(
        "INSERT INTO pushed(listing_id, field, value, version, at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (listing_id, field) DO UPDATE SET value = excluded.value, version = excluded.version,"
        " at = excluded.at WHERE excluded.version > pushed.version",
        (listing_id, field.value, value, version, tx.stamp),
    )
    tx.conn.execute(
        "DELETE FROM outbox WHERE listing_id = ? AND field = ? AND version = ?", (listing_id, field.value, version)
    )
    _log_push(tx, listing_id, field.value, value, version, "ok")
    channel_reachable(tx, channel)
    # A desire may have changed back to an older value while this push was in flight.
    listing = tx.conn.execute(
        "SELECT channel, target_qty, price, paused FROM listings WHERE id = ?", (listing_id,)
    ).fetchone()
    desired = {
        Field.QUANTITY: str(listing["target_qty"]) if listing["target_qty"] is not None else None,
        Field.PRICE: listing["price"],
        Field.STATUS: "paused" if listing["paused"] else "active",
    }[field]
    if desired is not None:
        sync_outbox(tx, listing_id, listing["channel"], field, desired)


def push_failed(
    tx: Tx,
    channel: str,
    listing_id: int,
    field: Field,
    version: int,
    kind: str,
    error: str,
    retry_after: float | None,
    jitter: float,
    policy: RetryPolicy,
) -> str:
    """Record a failed push (`kind`: rate_limited / transient / permanent); return the row's new state."""
    row = tx.conn.execute(
        "SELECT value, attempts, deferrals, state FROM outbox WHERE listing_id = ? AND field = ?",
        (listing_id, field.value),
    ).fetchone()
    if row is None:  # confirmed or superseded meanwhile
        return "gone"
    attempts, deferrals = row["attempts"], row["deferrals"]
    if kind == "rate_limited" and deferrals < policy.deferral_budget:
        deferrals += 1
    elif kind != "permanent":
        attempts += 1
    dead = kind == "permanent" or attempts >= policy.max_attempts
    delay = retry_delay(attempts, policy.base, policy.cap, jitter, retry_after)
    state = "dead" if dead else "pending"
    tx.conn.execute(
        "UPDATE outbox SET attempts = ?, deferrals = ?, state = ?, next_attempt = ?, last_error = ?"
        " WHERE listing_id = ? AND field = ?",
        (attempts, deferrals, state, iso(tx.now + timedelta(seconds=delay)), error[:500], listing_id, field.value),
    )
    _log_push(tx, listing_id, field.value, row["value"], version, "dead" if dead else kind, error)
    if kind == "permanent":
        channel_reachable(tx, channel)  # it answered; the request was wrong, not the channel
    else:
        until = tx.now + timedelta(seconds=retry_after) if kind == "rate_limited" and retry_after else None
        channel_failure(tx, channel, error, until)
    if dead:
        listing = tx.conn.execute("SELECT sku, external_id FROM listings WHERE id = ?", (listing_id,)).fetchone()
        raise_alert(tx, AlertKind.DEAD_PUSH, f"{listing_id}:{field.value}",
                    f"{channel} {listing['external_id']}: {field.value}={row['value']} could not be pushed:"
                    f" {error[:200]}",
                    sku=listing["sku"], channel=channel, detail={"attempts": attempts, "error": error[:500]})
    return state


def dlq_retry(tx: Tx, listing_id: int | None = None) -> int:
    """Send dead pushes back to the queue (all, or one listing's); return how many."""
    cur = tx.conn.execute(
        "UPDATE outbox SET state = 'pending', attempts = 0, deferrals = 0, next_attempt = ?"
        " WHERE state = 'dead' AND (? IS NULL OR listing_id = ?)",
        (tx.stamp, listing_id, listing_id),
    )
    if cur.rowcount:
        tx.outbox_changed = True
        tx.conn.execute(
            "UPDATE alerts SET acked_at = ? WHERE kind = 'dead_push' AND acked_at IS NULL"
            " AND (? IS NULL OR key LIKE ? || ':%')",
            (tx.stamp, listing_id, str(listing_id)),
        )
    return cur.rowcount


# ---- tokens -------------------------------------------------------------------------------------


def save_token(tx: Tx, channel: str, refresh_token: str, access_token: str | None, expires_at: datetime | None) -> None:
    """Store a channel's tokens; committed before the caller uses the new access token."""
    tx.conn.execute(
        "INSERT INTO tokens(channel, refresh_token, access_token, expires_at, updated) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (channel) DO UPDATE SET refresh_token = excluded.refresh_token,"
        " access_token = excluded.access_token, expires_at = excluded.expires_at, updated = excluded.updated",
        (channel, refresh_token, access_token, iso(expires_at) if expires_at else None, tx.stamp),
    )
    _channel_row(tx, channel)
    tx.conn.execute(
        "UPDATE channel_state SET token_expiry = ? WHERE channel = ?",
        (iso(expires_at) if expires_at else None, channel),
    )


# ---- catalog and locations ----------------------------------------------------------------------


def sync_locations(tx: Tx, locations: Mapping[str, tuple[str, str, list[str]]]) -> None:
    """Make the locations table match the configuration (id → name, kind, sources)."""
    for loc_id, (name, kind, sources) in locations.items():
        tx.conn.execute(
            "INSERT INTO locations(id, name, kind, sources) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " name = excluded.name, kind = excluded.kind, sources = excluded.sources",
            (loc_id, name, kind, json.dumps(sources)),
        )


def import_catalog(tx: Tx, plan: CatalogPlan, fba_locations: set[str]) -> dict[str, int]:
    """Upsert products, stock pools, listings and kits from a clean plan; idempotent."""
    if plan.errors:
        raise Rejected("catalog has errors; nothing imported", plan.errors)
    conflicts = []
    for spec in plan.listings:
        row = tx.conn.execute(
            "SELECT sku FROM listings WHERE channel = ? AND external_id = ? AND variation_id = ?",
            (spec.channel, spec.external_id, spec.variation_id),
        ).fetchone()
        if row is not None and row["sku"] != spec.sku:
            conflicts.append(f"{spec.channel} {spec.external_id} is already mapped to {row['sku']}, not {spec.sku}")
    if conflicts:
        raise Rejected("catalog contradicts the stored mappings; nothing imported", conflicts)
    for product in plan.products.values():
        tx.conn.execute(
            "INSERT INTO products(sku, title, safety_buffer, is_kit) VALUES (?, ?, ?, ?) ON CONFLICT (sku)"
            " DO UPDATE SET title = excluded.title, safety_buffer = excluded.safety_buffer, is_kit = excluded.is_kit",
            (product.sku, product.title, product.safety_buffer, int(product.sku in plan.kits)),
        )
    for sku, location in plan.stock_locations:
        if sku not in plan.kits:
            tx.conn.execute("INSERT OR IGNORE INTO stock(sku, location, on_hand) VALUES (?, ?, 0)", (sku, location))
    for spec in plan.listings:
        managed = int(spec.channel != "threepl" and spec.location not in fba_locations)
        tx.conn.execute(
            "INSERT INTO listings(sku, channel, external_id, variation_id, location, cap, share, managed)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel, external_id, variation_id) DO UPDATE SET"
            " location = excluded.location, cap = excluded.cap, share = excluded.share, managed = excluded.managed",
            (spec.sku, spec.channel, spec.external_id, spec.variation_id, spec.location, spec.cap, spec.share, managed),
        )
    for kit, parts in plan.kits.items():
        tx.conn.execute("DELETE FROM kit_components WHERE kit_sku = ?", (kit,))
        for part, qty in parts.items():
            tx.conn.execute("INSERT INTO kit_components VALUES (?, ?, ?)", (kit, part, qty))
    touch(tx, plan.products)
    return {"products": len(plan.products), "listings": len(plan.listings), "kits": len(plan.kits)}
