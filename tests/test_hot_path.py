"""The batched forms of the write path agree with the one-at-a-time rules they replace."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from syncd.capture.events import Event, Receipt, StockCount
from syncd.domain.catalog import parse_catalog
from syncd.domain.models import Field
from syncd.service import _RandomKeys
from syncd.store import commands
from syncd.store.apply import Policy, ingest
from syncd.store.db import migrate, open_writer
from syncd.store.stockcalc import _locations_of, figures, flush, pool_figures, sync_outbox
from syncd.store.writer import Tx

T0 = datetime(2026, 12, 1, tzinfo=UTC)
CATALOG = """sku,title,location,channel,external_id,variation_id,safety_buffer,cap,share
A,A,main,mercadolibre,MLA,,1,,
A,A,main,amazon,A-1,,1,,
A,A,east,amazon,A-E,,1,,
"""


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    db = open_writer(tmp_path / "hot.db")
    migrate(db)
    _tx(db, lambda tx: commands.sync_locations(tx, {loc: (loc, "warehouse", ["threepl", "manual"])
                                                     for loc in ("main", "east", "west")}))
    plan = parse_catalog(CATALOG, {"amazon", "mercadolibre", "threepl"}, {"main", "east", "west"})
    _tx(db, lambda tx: commands.import_catalog(tx, plan, set()))
    yield db
    db.close()


def _tx(db: sqlite3.Connection, fn: Callable[[Tx], Any], now: datetime = T0) -> Any:
    db.execute("BEGIN IMMEDIATE")
    tx = Tx(conn=db, now=now)
    result = fn(tx)
    flush(tx)
    db.execute("COMMIT")
    return result


def _receipt(key: str, qty: int, at: datetime, location: str = "main") -> Event:
    return Event(dedupe_key=key, source="threepl", received_at=at,
                 body=Receipt(sku="A", location=location, qty=qty, ref=key, at=at))


def _outbox(db: sqlite3.Connection) -> dict[int, tuple[str, int]]:
    return {r[0]: (r[1], r[2]) for r in db.execute("SELECT listing_id, value, version FROM outbox")}


def test_pool_figures_match_figures_of_each_pool(conn: sqlite3.Connection) -> None:
    _tx(conn, lambda tx: ingest(tx, _receipt("r1", 5, T0), Policy()))
    conn.execute("INSERT INTO stock(sku, location, on_hand) VALUES ('A', 'west', 2)")  # a pool with no listing
    now = T0.isoformat()
    expected = [(loc, figures(conn, "A", loc, now)) for loc in _locations_of(conn, "A")]
    assert [loc for loc, _ in expected] == ["east", "main", "west"]
    assert pool_figures(conn, "A", now) == expected


def test_batched_retarget_numbers_outbox_versions_in_listing_order(conn: sqlite3.Connection) -> None:
    before = _outbox(conn)
    _tx(conn, lambda tx: ingest(tx, _receipt("r1", 5, T0), Policy()))
    after = _outbox(conn)
    main = [r[0] for r in conn.execute("SELECT id FROM listings WHERE location = 'main' ORDER BY id")]
    assert [after[i][0] for i in main] == ["4", "4"]  # 5 on hand - buffer 1
    versions = [after[i][1] for i in main]
    assert versions == sorted(versions) and len(set(versions)) == 2
    assert all(v > max((b[1] for b in before.values()), default=0) for v in versions)
    # The same figures again change nothing: no new versions, no outbox change.
    tx_flags = _tx(conn, lambda tx: (sync_outbox(tx, main[0], "mercadolibre", Field.QUANTITY, "4"),
                                     tx.outbox_changed)[1])
    assert tx_flags is False and _outbox(conn) == after


def test_a_confirmed_value_retires_a_pending_row_that_wants_it_again(conn: sqlite3.Connection) -> None:
    _tx(conn, lambda tx: ingest(tx, _receipt("r1", 5, T0), Policy()))
    listing = conn.execute("SELECT id FROM listings WHERE channel = 'mercadolibre'").fetchone()[0]
    conn.execute("INSERT INTO pushed(listing_id, field, value, version, at) VALUES (?, 'quantity', '4', 1, ?)",
                 (listing, T0.isoformat()))
    _tx(conn, lambda tx: ingest(tx, _receipt("r2", 1, T0), Policy()))  # wants 5: the row is updated
    assert _outbox(conn)[listing][0] == "5"
    _tx(conn, lambda tx: ingest(tx, Event(dedupe_key="c1", source="manual", received_at=T0, body=StockCount(
        sku="A", location="main", qty=5, as_of=T0 + timedelta(minutes=1), source="manual")), Policy()))
    # 6 on hand counted down to 5 wants 4 again, which the channel already shows: nothing left to push.
    assert listing not in _outbox(conn)


def test_a_movement_older_than_the_last_count_leaves_on_hand_alone(conn: sqlite3.Connection) -> None:
    count = StockCount(sku="A", location="main", qty=7, as_of=T0 + timedelta(hours=1), source="threepl")
    _tx(conn, lambda tx: ingest(tx, Event(dedupe_key="c1", source="threepl", received_at=T0, body=count),
                                Policy()))
    _tx(conn, lambda tx: ingest(tx, _receipt("late", 3, T0), Policy()))  # happened before the count
    _tx(conn, lambda tx: ingest(tx, _receipt("new", 2, T0 + timedelta(hours=2)), Policy()))
    on_hand = conn.execute("SELECT on_hand FROM stock WHERE sku = 'A' AND location = 'main'").fetchone()[0]
    assert on_hand == 9
    balanced = conn.execute("SELECT delta FROM ledger WHERE ref = 'seen-by-count:late'").fetchall()
    assert [r[0] for r in balanced] == [-3]


def test_random_keys_are_distinct_hex_across_refills() -> None:
    keys = _RandomKeys(per_fill=4)
    drawn = [keys.next() for _ in range(50)]
    assert len(set(drawn)) == 50
    assert all(len(k) == 24 and int(k, 16) >= 0 for k in drawn)
