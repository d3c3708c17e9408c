"""The `syncd` command line. State-changing commands go through the running daemon's admin API, or
open the database directly when no daemon is up, so the writer stays the only writer either way."""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from syncd.config import ConfigError, Settings, load_settings, resolve_config_path

EXIT_OK, EXIT_FAIL, EXIT_CONFIG = 0, 1, 2


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(resolve_config_path(args.config))


async def _request(settings: Settings, method: str, path: str, body: Any = None,
                   text: str | None = None) -> tuple[int, Any]:
    """Call the admin API of the running daemon, or of a short-lived local one on the same database."""
    base = f"http://{settings.daemon.admin_listen}"
    try:
        return await _http(base, method, path, body, text)
    except aiohttp.ClientConnectorError:
        pass
    from syncd.daemon import Daemon

    # No daemon: serve the same API from this process on an ephemeral loopback port, channels off.
    local = settings.model_copy(deep=True)
    local.daemon.admin_listen = "127.0.0.1:0"
    local.daemon.public_listen = "127.0.0.1:0"
    daemon = Daemon(local, build_channels=False)
    await daemon.start()
    try:
        return await _http(daemon.admin_url, method, path, body, text)
    finally:
        await daemon.stop()


async def _http(base: str, method: str, path: str, body: Any, text: str | None) -> tuple[int, Any]:
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        if text is not None:
            kwargs = {"data": text.encode(), "headers": {"Content-Type": "text/csv"}}
        async with session.request(method, base + path, **kwargs) as resp:
            raw = await resp.text()
            try:
                return resp.status, json.loads(raw)
            except ValueError:
                return resp.status, raw


def _print(value: Any) -> None:
    print(value if isinstance(value, str) else json.dumps(value, indent=2, default=str))


def _api(method: str, path_of: Callable[[argparse.Namespace], str],
         body_of: Callable[[argparse.Namespace], Any] | None = None) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        status, payload = asyncio.run(_request(_settings(args), method, path_of(args),
                                               body_of(args) if body_of else None))
        _print(payload)
        return EXIT_OK if status < 400 else EXIT_FAIL
    return run


# ---- commands that need more than one call ------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon in the foreground until SIGTERM or Ctrl-C.

    Example: syncd run --config /etc/syncd/config.toml
    """
    from syncd.daemon import Daemon, run_until_signalled
    from syncd.log import configure

    settings = _settings(args)
    configure(settings.daemon.log_format, settings.daemon.log_level)
    asyncio.run(run_until_signalled(Daemon(settings)))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """Ask the running daemon how each channel is; exit 0 ok, 1 lagging, 2 down or unreachable.

    Example: syncd status --json || echo "syncd needs a look"
    """
    settings = _settings(args)

    async def fetch() -> tuple[int, Any]:
        return await _http(f"http://{settings.daemon.admin_listen}", "GET", "/status", None, None)

    try:
        _, doc = asyncio.run(fetch())
    except aiohttp.ClientError as err:
        print(f"syncd is unreachable at {settings.daemon.admin_listen}: {err}", file=sys.stderr)
        return EXIT_CONFIG
    if args.json:
        _print(doc)
    else:
        for name, ch in doc["channels"].items():
            print(f"{name:<14} {ch['state']:<8} lag {ch['lag_seconds']:>8.1f}s  queue {ch['queue_depth']:>4}"
                  f"  dead {ch['dead']:>3}  failures {ch['consecutive_failures']}")
    states = {ch["state"] for ch in doc["channels"].values()}
    return EXIT_CONFIG if "down" in states else EXIT_FAIL if "lagging" in states else EXIT_OK


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate the configuration file and exit (2 when it is invalid, naming each bad key).

    Example: syncd check-config --config /etc/syncd/config.toml
    """
    settings = _settings(args)
    enabled = ", ".join(settings.channels.enabled()) or "none"
    print(f"config ok: database {settings.daemon.database}, channels enabled: {enabled}")
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    """Create or upgrade the database schema (works before any daemon has run).

    Example: syncd migrate --config /etc/syncd/config.toml
    """
    from syncd.store.db import migrate, open_writer, schema_version

    settings = _settings(args)
    conn = open_writer(settings.daemon.database, settings.daemon.synchronous)
    try:
        applied = migrate(conn)
        print(f"schema version {schema_version(conn)}; applied: {', '.join(applied) or 'nothing'}")
    finally:
        conn.close()
    return EXIT_OK


def cmd_catalog_import(args: argparse.Namespace) -> int:
    """Import listings and kits from a CSV; reports unknown or ambiguous mappings instead of guessing.

    Example: syncd catalog import catalog.csv
    """
    text = Path(args.file).read_text(encoding="utf-8")
    status, payload = asyncio.run(_request(_settings(args), "POST", "/api/catalog", text=text))
    _print(payload)
    return EXIT_OK if status < 400 else EXIT_FAIL


def cmd_catalog_export(args: argparse.Namespace) -> int:
    """Print the catalog as CSV in the import format.

    Example: syncd catalog export > catalog.csv
    """
    status, payload = asyncio.run(_request(_settings(args), "GET", "/api/catalog"))
    sys.stdout.write(payload if isinstance(payload, str) else json.dumps(payload))
    return EXIT_OK if status < 400 else EXIT_FAIL


def cmd_backup(args: argparse.Namespace) -> int:
    """Copy the database consistently (SQLite online backup; safe while the daemon runs).

    Example: syncd backup /var/backups/syncd-$(date +%F).db
    """
    settings = _settings(args)
    target = Path(args.path or f"{settings.daemon.database}.{datetime.now(UTC):%Y%m%dT%H%M%S}.bak")
    src = sqlite3.connect(f"file:{settings.daemon.database}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    print(f"backup written to {target}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Run syncd against the sandbox simulators with generated traffic and a short outage.

    Example: syncd demo --duration 120
    """
    from syncd.demo import run_demo

    return run_demo(duration=args.duration, port=args.port)


# ---- the parser ---------------------------------------------------------------------------------


def _add(sub: Any, name: str, fn: Callable[[argparse.Namespace], int], doc: str) -> argparse.ArgumentParser:
    summary, _, example = doc.partition("Example:")
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=summary.strip().splitlines()[0], description=summary.strip(),
        epilog=f"Example: {example.strip()}" if example else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(fn=fn)
    return parser


def _listing_path(a: argparse.Namespace) -> str:
    variation = f"?variation_id={a.variation}" if a.variation else ""
    return f"/api/listings/{a.channel}/{a.external_id}/{a.listing_command}{variation}"


def build_parser() -> argparse.ArgumentParser:
    """The whole CLI."""
    parser = argparse.ArgumentParser(
        prog="syncd", description="Keep one honest truth of stock, orders and prices across channels.",
        epilog="Example: syncd status --json")
    parser.add_argument("--config", help="config file (default $SYNCD_CONFIG or /etc/syncd/config.toml)")
    sub = parser.add_subparsers(dest="command", required=True)
    _add(sub, "run", cmd_run, cmd_run.__doc__ or "")
    p = _add(sub, "demo", cmd_demo, cmd_demo.__doc__ or "")
    p.add_argument("--duration", type=float, default=None, help="exit by itself after S seconds")
    p.add_argument("--port", type=int, default=8781, help="board port on 127.0.0.1 (0 picks a free one)")
    p = _add(sub, "status", cmd_status, cmd_status.__doc__ or "")
    p.add_argument("--json", action="store_true", help="print the full status document")
    _add(sub, "check-config", cmd_check_config, cmd_check_config.__doc__ or "")
    _add(sub, "migrate", cmd_migrate, cmd_migrate.__doc__ or "")
    p = _add(sub, "backup", cmd_backup, cmd_backup.__doc__ or "")
    p.add_argument("path", nargs="?")

    catalog = sub.add_parser("catalog", help="import or export the catalog CSV",
                             epilog="Example: syncd catalog import catalog.csv").add_subparsers(
        dest="catalog_command", required=True)
    p = _add(catalog, "import", cmd_catalog_import, cmd_catalog_import.__doc__ or "")
    p.add_argument("file")
    _add(catalog, "export", cmd_catalog_export, cmd_catalog_export.__doc__ or "")

    stock = sub.add_parser("stock", help="record a physical count",
                           epilog="Example: syncd stock count MUG-01 main 40").add_subparsers(
        dest="stock_command", required=True)
    p = _add(stock, "count", _api("POST", lambda a: "/api/stock/counts", lambda a: {
        "sku": a.sku, "location": a.location, "qty": a.qty, "source": a.source,
        **({"as_of": a.as_of} if a.as_of else {})}),
        "Record a physical count of SKU at LOCATION (accepted, or kept as a disagreement).\n\n"
        "Example: syncd stock count MUG-01 main 40 --as-of 2026-12-03T09:00:00Z")
    p.add_argument("sku")
    p.add_argument("location")
    p.add_argument("qty", type=int)
    p.add_argument("--as-of", help="when the count was taken (ISO 8601 with zone; default now)")
    p.add_argument("--source", default="manual", help="who counted (default manual)")

    p = _add(sub, "reserve", _api("POST", lambda a: "/api/reservations", lambda a: {
        "sku": a.sku, "qty": a.qty, **({"ttl_seconds": a.ttl} if a.ttl else {})}),
        "Hold QTY units of SKU; refused (exit 1) when fewer are available.\n\n"
        "Example: syncd reserve MUG-01 2 --ttl 600")
    p.add_argument("sku")
    p.add_argument("qty", type=int)
    p.add_argument("--ttl", type=int, help="seconds the hold lasts")

    def orders_path(a: argparse.Namespace) -> str:
        q = "&".join(f"{k}={v}" for k, v in (("channel", a.channel), ("state", a.state)) if v)
        return "/api/orders" + (f"?{q}" if q else "")

    p = _add(sub, "orders", _api("GET", orders_path),
             "List orders of every channel, newest first.\n\nExample: syncd orders --channel mercadolibre")
    p.add_argument("--channel")
    p.add_argument("--state")

    p = _add(sub, "explain", _api("GET", lambda a: f"/api/products/{a.sku}"),
             "Why SKU's available is what it is: counts, movements, holds, rules, pushes.\n\n"
             "Example: syncd explain MUG-01")
    p.add_argument("sku")

    dlq = sub.add_parser("dlq", help="dead pushes", epilog="Example: syncd dlq retry").add_subparsers(
        dest="dlq_command", required=True)
    _add(dlq, "list", _api("GET", lambda a: "/api/dlq"), "List pushes that failed for good.\n\nExample: syncd dlq list")
    p = _add(dlq, "retry", _api("POST", lambda a: "/api/dlq/retry", lambda a: {"listing_id": a.listing}),
             "Send dead pushes back to the queue.\n\nExample: syncd dlq retry --listing 12")
    p.add_argument("--listing", type=int)

    price = sub.add_parser("price", help="set prices", epilog="Example: syncd price set MUG-01 19.90").add_subparsers(
        dest="price_command", required=True)
    p = _add(price, "set", _api("POST", lambda a: "/api/prices", lambda a: {
        "sku": a.sku, "price": a.price, "channel": a.channel}),
        "Set SKU's price on every channel, or one.\n\nExample: syncd price set MUG-01 19.90 --channel amazon")
    p.add_argument("sku")
    p.add_argument("price")
    p.add_argument("--channel")

    listing = sub.add_parser("listing", help="pause or resume a listing",
                             epilog="Example: syncd listing pause mercadolibre MLM123").add_subparsers(
        dest="listing_command", required=True)
    for action in ("pause", "resume"):
        p = _add(listing, action, _api("POST", _listing_path),
                 f"{action.capitalize()} one listing.\n\nExample: syncd listing {action} mercadolibre MLM123")
        p.add_argument("channel")
        p.add_argument("external_id")
        p.add_argument("--variation")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `syncd` and `python -m syncd`."""
    args = build_parser().parse_args(argv)
    from syncd.log import configure

    # Output of one-shot commands is their result on stdout; only warnings go to stderr.
    configure("console", "warning")
    runner: Callable[[argparse.Namespace], int | Awaitable[int]] = args.fn
    try:
        result = runner(args)
    except ConfigError as err:
        print(str(err), file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_FAIL
    assert isinstance(result, int)
    return result
