"""Raising alerts: one open alert per (kind, key), refreshed rather than repeated."""

from __future__ import annotations

import json
from typing import Any

from syncd.domain.models import AlertKind
from syncd.store.timefmt import iso
from syncd.store.writer import Tx


def raise_alert(
    tx: Tx,
    kind: AlertKind,
    key: str,
    message: str,
    *,
    sku: str | None = None,
    channel: str | None = None,
    detail: dict[str, Any] | None = None,
) -> int:
    """Open an alert, or refresh the open one with the same (kind, key); return its id."""
    now = iso(tx.now)
    body = json.dumps(detail or {}, default=str)
    row = tx.conn.execute(
        "SELECT id FROM alerts WHERE kind = ? AND key = ? AND acked_at IS NULL", (kind.value, key)
    ).fetchone()
    if row is not None:
        tx.conn.execute(
            "UPDATE alerts SET message = ?, detail = ?, updated_at = ? WHERE id = ?",
            (message, body, now, row["id"]),
        )
        return int(row["id"])
    cur = tx.conn.execute(
        "INSERT INTO alerts(kind, key, sku, channel, message, detail, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (kind.value, key, sku, channel, message, body, now, now),
    )
    return int(cur.lastrowid or 0)


def ack_alert(tx: Tx, alert_id: int) -> bool:
    """Acknowledge an open alert; False when there is no such open alert."""
    cur = tx.conn.execute(
        "UPDATE alerts SET acked_at = ? WHERE id = ? AND acked_at IS NULL", (iso(tx.now), alert_id)
    )
    return cur.rowcount == 1
