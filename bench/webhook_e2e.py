"""End to end over HTTP: a webhook-sized POST answered after its event is durable, against an
HTTP-only aiohttp handler that parses the same JSON and enqueues it (the ceiling, PERFORMANCE.md).

A: the real daemon (`syncd run`, no channels): POST /api/stock/receipts → the one door → writer
(group commit, synchronous=FULL) → 201 after COMMIT; every request is a distinct event that
writes the inbox, the ledger, the available and the outbox. B: the HTTP-only handler. Both servers
are pinned to CPU 0 and wrk (Debian package `wrk`) to CPU 1, 50 connections, rounds interleaved
A B A B. Prints medians and the ratio A/B. Run: .venv/bin/python bench/webhook_e2e.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKUS = [f"B{i:02d}" for i in range(20)]
LUA_SKUS = ",".join(f'"{s}"' for s in SKUS)
LUA = (
    "local n = 0\n"
    f"local skus = {{{LUA_SKUS}}}\n"
    "request = function()\n"
    "  n = n + 1\n"
    "  local body = '{\"sku\":\"' .. skus[(n % #skus) + 1] .. '\",\"location\":\"main\",\"qty\":1,"
    "\"ref\":\"wrk-' .. n .. '\"}'\n"
    "  return wrk.format(\"POST\", \"/api/stock/receipts\", {[\"Content-Type\"] = \"application/json\"}, body)\n"
    "end\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_baseline(port: int) -> None:
    """The HTTP-only ceiling: parse the JSON, enqueue it, answer 201."""
    import json

    from aiohttp import web

    queue: asyncio.Queue[object] = asyncio.Queue()

    async def handler(request: web.Request) -> web.Response:
        body = json.loads(await request.text())
        queue.put_nowait(body)
        return web.json_response({"outcome": "queued"}, status=201)

    async def drain(app: web.Application) -> None:
        async def loop() -> None:
            while True:
                await queue.get()
        app["drain"] = asyncio.create_task(loop())

    app = web.Application()
    app.router.add_post("/api/stock/receipts", handler)
    app.on_startup.append(drain)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def _pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def _wait(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("server did not start")


def start_daemon(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "config.toml"
    config.write_text(f"""
[daemon]
database = "{tmp / 'bench.db'}"
admin_listen = "127.0.0.1:{port}"
public_listen = "127.0.0.1:{free_port()}"
log_level = "warning"
[locations.main]
sources = ["threepl", "manual"]
""")
    catalog = tmp / "catalog.csv"
    catalog.write_text("sku,title,location,channel,external_id,variation_id,safety_buffer,cap,share\n" + "".join(
        f"{s},{s},main,amazon,{s}-A,,0,,\n{s},{s},main,mercadolibre,MLM{s},,0,,\n" for s in SKUS))
    syncd = [sys.executable, "-m", "syncd", "--config", str(config)]
    subprocess.run([*syncd, "catalog", "import", str(catalog)], check=True, capture_output=True, cwd=ROOT)
    proc = subprocess.Popen([*_pin(0), *syncd, "run"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _wait(port)
    return proc


def start_baseline(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([*_pin(0), sys.executable, __file__, "--serve-baseline", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(port)
    return proc


def _ms(text: str) -> float:
    found = re.match(r"([\d.]+)(us|ms|s)$", text)
    if found is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(port: int, seconds: int, script: Path) -> tuple[float, float, float]:
    out = subprocess.run([*_pin(1), "wrk", "-t1", "-c50", f"-d{seconds}s", "--latency", "-s", str(script),
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    if "Non-2xx" in out:
        raise RuntimeError(f"errors during the run:\n{out}")
    return rate, p50, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve-baseline", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return
    if not shutil.which("wrk"):
        sys.exit("wrk is needed as the load generator (a Python client saturates first): apt-get install wrk")
    results: dict[str, list[tuple[float, float, float]]] = {"daemon": [], "http-only": []}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(LUA)
        for rnd in range(args.rounds):
            for name in ("daemon", "http-only"):
                port = free_port()
                proc = start_daemon(Path(tmp) / f"r{rnd}", port) if name == "daemon" else start_baseline(port)
                try:
                    results[name].append(wrk(port, args.seconds, script))
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
                rate, p50, p99 = results[name][-1]
                print(f"round {rnd + 1} {name:<9}: {rate:8,.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms",
                      flush=True)
    med = {k: tuple(statistics.median(r[i] for r in v) for i in range(3)) for k, v in results.items()}
    d, b = med["daemon"], med["http-only"]
    print(f"\nwrk -c50, server on one CPU, {args.rounds} interleaved rounds of {args.seconds} s (medians)")
    print(f"daemon, reply after COMMIT (synchronous=FULL): {d[0]:8,.0f} req/s  p50 {d[1]:.2f} ms  p99 {d[2]:.2f} ms")
    print(f"HTTP-only handler (parse + enqueue):           {b[0]:8,.0f} req/s  p50 {b[1]:.2f} ms  p99 {b[2]:.2f} ms")
    print(f"ratio daemon / HTTP-only:                      {d[0] / b[0]:.2f}")


if __name__ == "__main__":
    main()
