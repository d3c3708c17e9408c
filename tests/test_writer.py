"""The single writer: group commit, a savepoint per command, durability before the answer, drain on stop."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from syncd.store.writer import Tx, Writer, WriterClosed


def _insert(key: str):  # type: ignore[no-untyped-def]
    def command(tx: Tx) -> str:
        tx.conn.execute("INSERT INTO seq(name, value) VALUES (?, 1)", (key,))
        return key
    return command


def _boom(tx: Tx) -> None:
    tx.conn.execute("INSERT INTO seq(name, value) VALUES ('half-done', 1)")
    raise ValueError("bad command")


async def test_one_failing_command_fails_alone_in_its_batch(tmp_path: Path) -> None:
    writer = Writer(tmp_path / "w.db")
    await writer.start()
    results = await asyncio.gather(writer.submit(_insert("a")), writer.submit(_boom), writer.submit(_insert("b")),
                                   return_exceptions=True)
    assert results[0] == "a" and results[2] == "b"
    assert isinstance(results[1], ValueError)
    assert writer.stats.batches == 1 and writer.stats.failed_commands == 1  # one transaction held all three
    await writer.stop()
    conn = sqlite3.connect(tmp_path / "w.db")
    names = {r[0] for r in conn.execute("SELECT name FROM seq")}
    assert {"a", "b"} <= names and "half-done" not in names


async def test_writer_survives_failures_and_keeps_serving(tmp_path: Path) -> None:
    writer = Writer(tmp_path / "w.db")
    await writer.start()
    for _ in range(3):
        with pytest.raises(ValueError):
            await writer.submit(_boom)
    assert await writer.submit(_insert("after")) == "after"
    await writer.stop()


async def test_answer_comes_only_after_commit(tmp_path: Path) -> None:
    writer = Writer(tmp_path / "w.db")
    await writer.start()
    await writer.submit(_insert("durable"))
    # A separate connection sees it at once: the future resolved after COMMIT, not before.
    conn = sqlite3.connect(tmp_path / "w.db")
    assert conn.execute("SELECT COUNT(*) FROM seq WHERE name = 'durable'").fetchone()[0] == 1
    await writer.stop()


async def test_stop_drains_queued_commands_then_refuses_new_ones(tmp_path: Path) -> None:
    writer = Writer(tmp_path / "w.db", batch_max=4)
    await writer.start()
    pending = [asyncio.ensure_future(writer.submit(_insert(f"k{i}"))) for i in range(50)]
    await asyncio.sleep(0)
    await writer.stop()
    assert [p.result() for p in pending] == [f"k{i}" for i in range(50)]
    with pytest.raises(WriterClosed):
        await writer.submit(_insert("late"))


async def test_group_commit_batches_concurrent_submissions(tmp_path: Path) -> None:
    writer = Writer(tmp_path / "w.db")
    await writer.start()
    await asyncio.gather(*[writer.submit(_insert(f"g{i}")) for i in range(500)])
    assert writer.stats.commands == 500
    assert writer.stats.batches < 100  # far fewer transactions than commands
    await writer.stop()
