"""A stateful test of the ledger (real SQLite file, the real apply rules) against a simple model.

Deliveries may repeat (duplicates) or arrive out of order, and the connection may be closed and
reopened at any step ("restart"); on hand, commitments and the ledger must always agree with the model.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from syncd.capture.events import Event, OrderLineIn, OrderUpsert, Receipt, Shipment, StockCount
from syncd.domain.catalog import parse_catalog
from syncd.domain.models import OrderState
from syncd.store import commands
from syncd.store.apply import Policy, ingest
from syncd.store.db import migrate, open_writer
from syncd.store.stockcalc import flush
from syncd.store.writer import Tx

T0 = datetime(2026, 12, 1, tzinfo=UTC)
CATALOG = """sku,title,location,channel,external_id,variation_id,safety_buffer,cap,share
A,A,main,mercadolibre,MLA,,1,,
B,B,main,amazon,B-1,,0,,
"""
LINES = {"o1": ("MLA", "A", 2), "o2": ("B-1", "B", 1), "o3": ("MLA", "A", 1)}
CHANNEL_OF = {"MLA": "mercadolibre", "B-1": "amazon"}
LINE_EFFECT = {"pending": "reserved", "paid": "committed", "shipped": "shipped", "cancelled": "cancelled"}


class LedgerMachine(RuleBasedStateMachine):
    """Drives `ingest` like the writer does, one transaction per step."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="syncd-ledger-"))
        self.path = self.dir / "syncd.db"
        self.conn = self._open()
        self._tx(lambda tx: commands.sync_locations(tx, {"main": ("Main", "warehouse", ["threepl", "manual"])}))
        plan = parse_catalog(CATALOG, {"amazon", "mercadolibre", "threepl"}, {"main"})
        self._tx(lambda tx: commands.import_catalog(tx, plan, set()))
        self.clock = 0
        self.delivered: list[Event] = []
        # The model.
        # Physical movements as (minute, delta), and the last accepted count as (minute, qty):
        # on hand is that count plus the movements after it (movements before it are in it).
        self.movements: dict[str, list[tuple[int, int]]] = {"A": [], "B": []}
        self.last_count: dict[str, tuple[int, int]] = {}
        self.orders: dict[str, tuple[int, str, bool]] = {}  # order -> (version, state, moved on hand)
        self.shipment_refs: set[tuple[str, str]] = set()

    def _open(self) -> sqlite3.Connection:
        conn = open_writer(self.path)
        migrate(conn)
        return conn

    def _tx(self, fn: Any) -> Any:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            tx = Tx(conn=self.conn, now=T0 + timedelta(days=1))
            result = fn(tx)
            flush(tx)  # what the writer's finalizer does before every COMMIT
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return result

    def _deliver(self, event: Event) -> str:
        result = self._tx(lambda tx: ingest(tx, event, Policy(authority_window=timedelta(0))))
        self.delivered.append(event)
        return str(result.outcome.value)

    def _at(self) -> datetime:
        self.clock += 1
        return T0 + timedelta(minutes=self.clock)

    def on_hand_model(self, sku: str) -> int:
        if sku not in self.last_count:
            return sum(d for _, d in self.movements[sku])
        at_minute, qty = self.last_count[sku]
        return qty + sum(d for at, d in self.movements[sku] if at > at_minute)

    @rule(sku=st.sampled_from(["A", "B"]), qty=st.integers(1, 20))
    def receipt(self, sku: str, qty: int) -> None:
        at = self._at()
        outcome = self._deliver(Event(dedupe_key=f"r{self.clock}", source="threepl",
                                      body=Receipt(sku=sku, location="main", qty=qty, ref=f"PO{self.clock}", at=at)))
        assert outcome == "applied"
        self.movements[sku].append((self.clock, qty))

    @rule(sku=st.sampled_from(["A", "B"]), qty=st.integers(0, 30), back=st.integers(0, 5))
    def count(self, sku: str, qty: int, back: int) -> None:
        at_minute = max(0, self.clock - back)
        self.clock += 1
        outcome = self._deliver(Event(dedupe_key=f"c{self.clock}", source="threepl", body=StockCount(
            sku=sku, location="main", qty=qty, as_of=T0 + timedelta(minutes=at_minute, seconds=30), source="threepl")))
        # A count is accepted when strictly newer than the last accepted one from the same source.
        accepted = sku not in self.last_count or at_minute > self.last_count[sku][0]
        assert outcome == ("applied" if accepted else "ignored")
        if accepted:
            self.last_count[sku] = (at_minute, qty)

    @rule(order=st.sampled_from(sorted(LINES)), state=st.sampled_from(list(OrderState)),
          version=st.integers(1, 8))
    def order_update(self, order: str, state: OrderState, version: int) -> None:
        external, sku, qty = LINES[order]
        channel = CHANNEL_OF[external]
        self.clock += 1
        event = Event(dedupe_key=f"{order}:{version}:{state.value}", source=channel, body=OrderUpsert(
            channel=channel, order_id=order, state=state, last_updated=T0 + timedelta(minutes=version),
            lines=[OrderLineIn(line_id="1", external_id=external, qty=qty)]))
        outcome = self._deliver(event)
        stored = self.orders.get(order)
        if any(e.dedupe_key == event.dedupe_key for e in self.delivered[:-1]):
            assert outcome == "duplicate"
            return
        if stored is not None and version <= stored[0]:
            assert outcome == "ignored"
            return
        assert outcome == "applied"
        old_state = stored[1] if stored else None
        moved = stored[2] if stored else False
        effective = state.value
        if effective in ("pending", "paid") and (channel, order) in self.shipment_refs:
            effective = "shipped"  # the 3PL already reported these goods gone
        if effective == "shipped" and old_state not in ("shipped", "cancelled") \
                and (channel, order) not in self.shipment_refs:
            self.movements[sku].append((version, -qty))
            self.shipment_refs.add((channel, order))
            moved = True
        self.orders[order] = (version, effective, moved)

    @rule(order=st.sampled_from(sorted(LINES)))
    def shipment_from_3pl(self, order: str) -> None:
        external, sku, qty = LINES[order]
        channel = CHANNEL_OF[external]
        at = self._at()
        outcome = self._deliver(Event(dedupe_key=f"s{self.clock}", source="threepl", body=Shipment(
            sku=sku, location="main", qty=qty, ref=f"SH{self.clock}", at=at, order_ref=f"{channel}:{order}")))
        releases = order in self.orders and self.orders[order][1] in ("pending", "paid")
        moves = (channel, order) not in self.shipment_refs
        assert outcome == ("applied" if moves or releases else "ignored")
        if moves:
            self.movements[sku].append((self.clock, -qty))
            self.shipment_refs.add((channel, order))
        if releases:
            v, _, _ = self.orders[order]
            self.orders[order] = (v, "shipped", True)

    @precondition(lambda self: self.delivered)
    @rule(pick=st.integers(0, 10_000))
    def redeliver(self, pick: int) -> None:
        event = self.delivered[pick % len(self.delivered)]
        assert self._tx(lambda tx: ingest(tx, event, Policy())).outcome.value == "duplicate"

    @rule()
    def restart(self) -> None:
        self.conn.close()
        self.conn = self._open()

    def _commitments(self, sku: str) -> tuple[int, int]:
        committed = reserved = 0
        for order, (_, state, _) in self.orders.items():
            if LINES[order][1] != sku:
                continue
            effect = LINE_EFFECT[state]
            committed += LINES[order][2] if effect == "committed" else 0
            reserved += LINES[order][2] if effect == "reserved" else 0
        return committed, reserved

    @invariant()
    def stock_matches_model_and_ledger(self) -> None:
        for sku in ("A", "B"):
            row = self.conn.execute("SELECT on_hand FROM stock WHERE sku = ?", (sku,)).fetchone()
            ledger = self.conn.execute("SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE sku = ?", (sku,)).fetchone()
            assert row[0] == self.on_hand_model(sku) == ledger[0]
            avail = self.conn.execute(
                "SELECT on_hand, committed, reserved, available FROM availability WHERE sku = ?", (sku,)).fetchone()
            committed, reserved = self._commitments(sku)
            buffer = 1 if sku == "A" else 0
            assert (avail["committed"], avail["reserved"]) == (committed, reserved)
            assert avail["available"] == max(0, row[0] - committed - reserved - buffer)

    def teardown(self) -> None:
        self.conn.close()
        shutil.rmtree(self.dir, ignore_errors=True)


TestLedger = LedgerMachine.TestCase
TestLedger.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
