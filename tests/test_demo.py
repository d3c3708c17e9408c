"""`syncd demo --duration S`: the whole story on loopback, watched through the admin API as it runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.test_cli import free_port

ROOT = Path(__file__).resolve().parent.parent


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_demo_runs_the_story_shows_the_outage_and_exits_cleanly() -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    proc = subprocess.Popen([sys.executable, "-m", "syncd", "demo", "--duration", "40", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    seen_states: set[str] = set()
    channels_with_orders: set[str] = set()
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                _, doc = _get(f"{base}/status")
                seen_states.add(doc["channels"]["mercadolibre"]["state"])
                _, orders = _get(f"{base}/api/orders")
                channels_with_orders |= {o["channel"] for o in orders}
            except (OSError, KeyError):
                pass
            time.sleep(0.5)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    assert f"the board is at {base}/" in out
    assert "FLASH SALE" in out and "OUTAGE begins" in out and "MercadoLibre is back" in out
    assert channels_with_orders >= {"amazon", "mercadolibre"}
    assert "ok" in seen_states and seen_states & {"lagging", "down"}, seen_states
    assert "Traceback" not in out
