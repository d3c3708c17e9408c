"""kill -9 at random moments under load: nothing acknowledged is lost, nothing is applied twice."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

CYCLES = 30
ROOT = Path(__file__).resolve().parent.parent


def _spawn(directory: Path, start: int, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.crash_child", str(directory), str(start), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env=env)


def _read_until(proc: subprocess.Popen[str], marker: str, deadline: float) -> list[str]:
    assert proc.stdout is not None
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if line.startswith(marker):
            return lines
    raise AssertionError(f"child never printed {marker!r}; last lines: {lines[-5:]}")


def _check(db: Path, acked: set[int]) -> int:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        keys = [r[0] for r in conn.execute("SELECT dedupe_key FROM inbox WHERE dedupe_key LIKE 'r%'")]
        assert len(keys) == len(set(keys))
        present = {int(k[1:]) for k in keys}
        missing = acked - present
        assert not missing, f"acknowledged events lost: {sorted(missing)[:10]}"
        on_hand = conn.execute("SELECT on_hand FROM stock WHERE sku = 'MUG'").fetchone()[0]
        ledger = conn.execute("SELECT SUM(delta) FROM ledger WHERE sku = 'MUG'").fetchone()[0] or 0
        receipts = conn.execute("SELECT COUNT(*) FROM ledger WHERE sku = 'MUG' AND reason = 'receipt'").fetchone()[0]
        assert on_hand == ledger == receipts == len(present)  # each receipt applied exactly once
        return max(present, default=-1) + 1
    finally:
        conn.close()


def test_kill_dash_nine_under_load_loses_nothing_and_applies_nothing_twice(tmp_path: Path) -> None:
    rng = random.Random(20261203)
    db = tmp_path / "syncd.db"
    acked: set[int] = set()
    start = 0
    for _ in range(CYCLES):
        proc = _spawn(tmp_path, start, "--replay", "20")
        try:
            lines = _read_until(proc, "READY", time.monotonic() + 30)
            for line in lines:
                if line.startswith("REPLAY"):
                    _, n, outcome = line.split()
                    assert int(n) not in acked or outcome == "duplicate", line
            # Let it run under load for a random moment, then kill it without warning.
            time.sleep(rng.uniform(0.05, 0.4))
            proc.send_signal(signal.SIGKILL)
            out, _ = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
        for line in out.splitlines():
            if line.startswith("ACK "):
                acked.add(int(line.split()[1]))
        start = _check(db, acked)
    assert len(acked) > CYCLES  # the load really ran
    # After the last crash, a restart drains the outbox that the crashes left behind.
    proc = _spawn(tmp_path, start, "--drain")
    try:
        _read_until(proc, "DRAINED", time.monotonic() + 30)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    conn = sqlite3.connect(db)
    try:
        pending = conn.execute("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").fetchone()[0]
        target = conn.execute("SELECT target_qty FROM listings WHERE external_id = 'MLM1'").fetchone()[0]
        pushed = conn.execute(
            "SELECT p.value FROM pushed p JOIN listings l ON l.id = p.listing_id WHERE l.external_id = 'MLM1'"
        ).fetchone()[0]
    finally:
        conn.close()
    assert pending == 0 and int(pushed) == target == _check(db, acked)
