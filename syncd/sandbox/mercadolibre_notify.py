"""Simulated notification delivery: pointer POSTs, retries, faults, and the `/missed_feeds` history."""

from __future__ import annotations

import asyncio
import json
import random
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import structlog

from syncd.sandbox.common import Deliveries
from syncd.sandbox.mercadolibre_core import IdSource, SimClock, SimConfig, iso_z

log = structlog.get_logger(__name__)

# `_id` is not guaranteed (APIS_EVIDENCE §2.1): the 2026 orders_v2 example has none.
_TOPICS_WITHOUT_ID = frozenset({"orders_v2"})


@dataclass
class DeliveryFaults:
    """What goes wrong between ML and the callback URL; draws come from a seeded RNG."""

    loss_probability: float = 0.0  # an attempt that never reaches the receiver (counts as failed)
    duplicate_probability: float = 0.0  # a delivered body is POSTed once more, unchanged
    reorder_delay_seconds: float = 0.0  # each first attempt waits uniform(0, this): later may go first
    seed: int = 0


@dataclass
class FeedRecord:
    """One notification's delivery history, as `/missed_feeds` reports it (last attempt wins)."""

    id: str
    topic: str
    received: datetime
    body: dict[str, Any]
    request: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The `messages[]` entry: the delivered body's fields plus `request` and `response`."""
        data = {k: v for k, v in self.body.items() if k != "_id"}
        return {"_id": self.id, **data, "request": self.request, "response": self.response}


class Notifier:
    """Sends pointer notifications to the configured callback URL the way ML does."""

    def __init__(self, config: SimConfig, clock: SimClock, ids: IdSource) -> None:
        self.config = config
        self.clock = clock
        self.ids = ids
        self.faults = DeliveryFaults()
        self.rng = random.Random(self.faults.seed)
        self.disabled_topics: set[str] = set()
        self.records: list[FeedRecord] = []
        # Every attempt, for the control plane; bounded so a long demo run does not grow without end.
        self.log: deque[dict[str, Any]] = deque(maxlen=5000)
        self.deliveries = Deliveries()

    def set_faults(self, faults: DeliveryFaults) -> None:
        """Replace the fault settings and reseed the RNG so runs are reproducible."""
        self.faults = faults
        self.rng = random.Random(faults.seed)

    def emit(self, topic: str, resource: str) -> None:
        """Queue one notification for `resource` (called by the market on every change)."""
        if topic not in self.config.topics or topic in self.disabled_topics:
            return
        received = self.clock.now()
        body: dict[str, Any] = {}
        if topic not in _TOPICS_WITHOUT_ID:
            h = self.ids.hex(32)
            body["_id"] = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        body.update(
            resource=resource,
            user_id=self.config.user_id,
            topic=topic,
            application_id=self.config.application_id,
            attempts=0,
            sent=None,
            received=iso_z(received),
        )
        record = FeedRecord(self.ids.hex(24), topic, received, body)
        self._prune()
        self.records.append(record)
        delay = self.config.notify_delay_seconds
        if self.faults.reorder_delay_seconds > 0:
            delay += self.rng.uniform(0, self.faults.reorder_delay_seconds)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            # Changed from synchronous code outside the simulator's loop: kept for /missed_feeds only.
            log.warning("ml_sim.notification_not_sent", topic=topic, reason="no running event loop")
            return
        self.deliveries.spawn(self._deliver(record, delay))

    async def _deliver(self, record: FeedRecord, delay: float) -> None:
        await asyncio.sleep(delay)
        attempts = 1 + len(self.config.retry_delays)
        for attempt in range(1, attempts + 1):
            url = self.config.notify_url
            if url is None:
                return
            sent = max(self.clock.now(), record.received + timedelta(milliseconds=1))
            record.body = {**record.body, "attempts": attempt, "sent": iso_z(sent)}
            if await self._attempt(record, url):
                if self.rng.random() < self.faults.duplicate_probability:
                    await self._post(record, url, "duplicate")
                return
            if attempt < attempts:
                await asyncio.sleep(self.config.retry_delays[attempt - 1])
        log.info("ml_sim.notification_lost", topic=record.topic, resource=record.body["resource"])

    async def _attempt(self, record: FeedRecord, url: str) -> bool:
        if self.rng.random() < self.faults.loss_probability:
            timeout_ms = int(self.config.notify_timeout_seconds * 1000)
            record.request = self._request(record, url)
            record.response = {"req_time": timeout_ms, "http_code": None, "body": "", "headers": {}}
            self.log.append(self._log_entry(record, None, timeout_ms, "lost"))
            return False
        return await self._post(record, url, "attempt")

    async def _post(self, record: FeedRecord, url: str, kind: str) -> bool:
        payload = json.dumps(record.body, separators=(",", ":"))
        timeout = self.config.notify_timeout_seconds
        loop = asyncio.get_running_loop()
        started = loop.time()
        code: int | None = None
        text, headers = "", {}
        try:
            async with self.deliveries.session.post(
                url,
                data=payload.encode(),
                headers={"content-type": "application/json", "accept": "application/json"},
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                text = (await resp.text())[:1000]
                code, headers = resp.status, {k.lower(): v for k, v in resp.headers.items()}
        except (TimeoutError, aiohttp.ClientError):
            code = None
        elapsed_ms = int((loop.time() - started) * 1000)
        # ML treats anything but a 200 inside the deadline as a failure and retries.
        ok = code == 200 and elapsed_ms <= timeout * 1000
        if kind == "attempt":
            record.request = self._request(record, url)
            record.response = {"req_time": elapsed_ms, "http_code": code, "body": text, "headers": headers}
        self.log.append(
            self._log_entry(record, code, elapsed_ms, ("delivered" if ok else "failed") if kind == "attempt" else kind)
        )
        return ok

    def _request(self, record: FeedRecord, url: str) -> dict[str, Any]:
        data = json.dumps(record.body, separators=(",", ":"))
        headers = {
            "accept": "application/json",
            "content-type": "application/json",
            "content-length": str(len(data.encode())),
        }
        return {"url": url, "headers": headers, "data": data}

    def _log_entry(self, record: FeedRecord, code: int | None, ms: int, outcome: str) -> dict[str, Any]:
        return {
            "topic": record.topic,
            "resource": record.body["resource"],
            "attempts": record.body["attempts"],
            "sent": record.body["sent"],
            "received": record.body["received"],
            "http_code": code,
            "req_time": ms,
            "outcome": outcome,
        }

    def missed_feeds(self, topic: str | None, offset: int, limit: int) -> list[dict[str, Any]]:
        """Attempted notifications inside the retention window, oldest first."""
        self._prune()
        attempted = [r for r in self.records if r.body["attempts"] > 0 and (topic is None or r.topic == topic)]
        return [r.to_json() for r in attempted[offset : offset + limit]]

    def _prune(self) -> None:
        """Forget notifications past the two-day retention (records are in `received` order)."""
        horizon = self.clock.now() - timedelta(seconds=self.config.missed_feeds_retention_seconds)
        keep = next((n for n, r in enumerate(self.records) if r.received >= horizon), len(self.records))
        if keep:
            del self.records[:keep]

    def describe(self) -> dict[str, Any]:
        """Fault settings and counts for the control plane."""
        outcomes: dict[str, int] = {}
        for entry in self.log:
            outcomes[entry["outcome"]] = outcomes.get(entry["outcome"], 0) + 1
        return {
            "url": self.config.notify_url,
            "topics": list(self.config.topics),
            "disabled_topics": sorted(self.disabled_topics),
            "faults": asdict(self.faults),
            "timeout_seconds": self.config.notify_timeout_seconds,
            "delay_seconds": self.config.notify_delay_seconds,
            "retry_delays": list(self.config.retry_delays),
            "pending": self.deliveries.pending,
            "outcomes": outcomes,
        }

    async def drain(self, within: float = 5.0) -> None:
        """Wait until every queued delivery has finished (tests and the demo's shutdown)."""
        await self.deliveries.drain(within)

    async def close(self) -> None:
        """Cancel pending deliveries and close the HTTP session."""
        await self.deliveries.close()
