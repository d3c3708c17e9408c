"""The single writer: the only coroutine that changes the database.

Commands arrive on an asyncio.Queue. Each batch of commands runs as one `BEGIN IMMEDIATE … COMMIT`
in **one** hop to the writer's own thread (a plain sqlite3 connection), because every awaited
statement costs ~100 µs of thread round trip (PERFORMANCE.md). Each command runs inside its own
savepoint, so one failing command fails alone, and its caller's future resolves only after COMMIT:
an acknowledged event is durable.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import structlog

from syncd.store.db import migrate, open_writer
from syncd.store.timefmt import iso

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass
class Tx:
    """What one command may know and leave behind: the clock of its batch, and its effects."""

    conn: sqlite3.Connection
    now: datetime
    # `now` in store form; a batch stamps many rows with the same moment, so format it once.
    stamp: str = field(init=False)
    outbox_changed: bool = False
    notifications_stored: bool = False
    # Products whose available must be recomputed before this transaction commits (once per batch).
    touched: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.stamp = iso(self.now)


Command = Callable[[Tx], T]


class WriterClosed(RuntimeError):
    """The writer is stopping and takes no new commands."""


@dataclass
class _Item(Generic[T]):
    command: Command[T]
    future: asyncio.Future[T]


@dataclass
class WriterStats:
    """Counters for /metrics and the bench."""

    batches: int = 0
    commands: int = 0
    failed_commands: int = 0
    failed_batches: int = 0


@dataclass
class BatchEffects:
    """What a committed batch changed that other parts of the daemon react to."""

    outbox_changed: bool
    notifications_stored: bool


class Writer:
    """Owns the only write connection; `submit` a command and await its durable result."""

    def __init__(
        self,
        path: Path,
        synchronous: str = "FULL",
        batch_max: int = 256,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        finalize: Callable[[Tx], object] | None = None,
    ) -> None:
        self.path = path
        self.synchronous = synchronous
        self.batch_max = batch_max
        self.clock = clock
        # Runs after the batch's commands, inside the transaction: work shared by the whole batch.
        self.finalize = finalize
        self.stats = WriterStats()
        self.listeners: list[Callable[[BatchEffects], None]] = []
        self._queue: asyncio.Queue[_Item[Any] | None] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="syncd-writer")
        self._conn: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        """Open the connection on the writer thread, migrate, and start draining the queue."""
        loop = asyncio.get_running_loop()
        self._conn = await loop.run_in_executor(self._executor, self._open)
        self._task = asyncio.create_task(self._run(), name="syncd-writer")

    def _open(self) -> sqlite3.Connection:
        conn = open_writer(self.path, self.synchronous)
        applied = migrate(conn)
        if applied:
            log.info("migrations applied", migrations=applied)
        return conn

    async def submit(self, command: Command[T]) -> T:
        """Queue `command` and wait until the batch holding it has committed."""
        if self._closing:
            raise WriterClosed("writer is stopping")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Item(command, future))
        return await future

    @property
    def depth(self) -> int:
        """Commands waiting to run."""
        return self._queue.qsize()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch: list[_Item[Any]] = [first]
            while len(batch) < self.batch_max and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            try:
                results, effects = await loop.run_in_executor(
                    self._executor, self._run_batch, [item.command for item in batch]
                )
            except Exception as err:  # the whole batch failed to commit: every caller hears it
                log.error("writer batch failed", error=str(err), size=len(batch))
                self.stats.failed_batches += 1
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(err)
                continue
            for item, (ok, value) in zip(batch, results, strict=True):
                if item.future.done():  # the caller gave up waiting; the command still committed
                    continue
                if ok:
                    item.future.set_result(value)
                else:
                    item.future.set_exception(value)
            for listener in self.listeners:
                try:
                    listener(effects)
                except Exception:
                    log.exception("writer listener failed")

    def _run_batch(self, commands: list[Command[Any]]) -> tuple[list[tuple[bool, Any]], BatchEffects]:
        conn = self._conn
        assert conn is not None
        tx = Tx(conn=conn, now=self.clock())
        results: list[tuple[bool, Any]] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for command in commands:
                conn.execute("SAVEPOINT cmd")
                outbox_before, notes_before = tx.outbox_changed, tx.notifications_stored
                touched_before = set(tx.touched)
                try:
                    value = command(tx)
                except Exception as err:
                    conn.execute("ROLLBACK TO cmd")
                    conn.execute("RELEASE cmd")
                    tx.outbox_changed, tx.notifications_stored = outbox_before, notes_before
                    tx.touched = touched_before
                    results.append((False, err))
                    self.stats.failed_commands += 1
                else:
                    conn.execute("RELEASE cmd")
                    results.append((True, value))
            if self.finalize is not None:
                self.finalize(tx)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.stats.batches += 1
        self.stats.commands += len(commands)
        return results, BatchEffects(tx.outbox_changed, tx.notifications_stored)

    async def stop(self) -> None:
        """Run every command already queued, then close the connection."""
        if self._task is None:
            return
        self._closing = True
        self._queue.put_nowait(None)
        await self._task
        self._task = None
        loop = asyncio.get_running_loop()
        conn = self._conn
        if conn is not None:
            await loop.run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)
