"""Opening connections with the right pragmas, and numbered migrations recorded in the database."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

MIGRATIONS_PACKAGE = "syncd.store.migrations"


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files(MIGRATIONS_PACKAGE).iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def open_writer(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    """The one write connection: WAL, the configured durability, autocommit mode (we BEGIN ourselves)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'FULL' else 'NORMAL'}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def read_only_uri(path: Path) -> str:
    """URI of a read-only connection to the same file."""
    return f"file:{path.resolve()}?mode=ro"


def schema_version(conn: sqlite3.Connection) -> int:
    """`PRAGMA user_version`: the number of the last migration applied."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply pending migrations, each in its own transaction; return the names applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL)"
    )
    current = schema_version(conn)
    applied = []
    for number, name, sql in _migrations():
        if number <= current:
            continue
        stamp = datetime.now(UTC).isoformat()
        script = (
            f"BEGIN IMMEDIATE;\n{sql}\n"
            f"INSERT INTO schema_migrations VALUES ({number}, '{name}', '{stamp}');\n"
            f"PRAGMA user_version = {number};\nCOMMIT;"
        )
        try:
            conn.executescript(script)
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


def latest_version() -> int:
    """The number of the newest migration shipped."""
    return max((number for number, _, _ in _migrations()), default=0)
