"""Webhook delivery of the 3PL simulator: Standard Webhooks signatures, retries, loss, duplicates, reordering."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import string
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from standardwebhooks import Webhook

from syncd.sandbox.common import Deliveries

# Delay before each delivery attempt, in seconds: immediately, then the schedule ShipBob's AsyncAPI
# notes give (APIS.md §3.1, secondary source). `retry_scale` shrinks it for tests.
RETRY_SCHEDULE_SECONDS = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
# ShipBob waits this long for the receiver's answer before counting the attempt as failed.
DELIVERY_TIMEOUT_SECONDS = 15.0
TOPICS = (
    "order.shipped",
    "order.shipment.delivered",
    "order.shipment.exception",
    "order.shipment.on_hold",
    "order.shipment.cancelled",
    "return.created",
    "return.updated",
    "return.completed",
)
_ID_ALPHABET = string.ascii_letters + string.digits


def new_secret(rng: random.Random) -> str:
    """A `whsec_` signing secret (24 random bytes, base64), as Standard Webhooks issues them."""
    return "whsec_" + base64.b64encode(rng.randbytes(24)).decode()


@dataclass
class Subscription:
    """One `POST /webhook` subscription."""

    id: str
    url: str
    topics: list[str]
    secret: str
    created_at: datetime
    description: str | None = None
    enabled: bool = True

    def view(self, with_secret: bool) -> dict[str, Any]:
        """The API body: create answers with the secret, list never shows it."""
        body: dict[str, Any] = {
            "id": self.id,
            "url": self.url,
            "topics": list(self.topics),
            "description": self.description,
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
        }
        if with_secret:
            body["secret"] = self.secret
        else:
            body["enabled"] = self.enabled
        return body


@dataclass
class DeliveryFaults:
    """Probabilities and delays that make delivery as unreliable as the real thing."""

    loss: float = 0.0  # the event is never delivered, not even retried
    duplicate: float = 0.0  # the event is delivered a second time with the same webhook-id
    reorder_max_delay: float = 0.0  # each delivery starts after uniform(0, this) seconds

    def view(self) -> dict[str, float]:
        """JSON form for /_sim/state."""
        return {"loss": self.loss, "duplicate": self.duplicate, "reorder_max_delay": self.reorder_max_delay}


@dataclass
class WebhookDispatcher:
    """Publishes events to subscriptions and delivers them in background tasks."""

    counters: Counter[str]
    clock: Callable[[], datetime]
    seed: int = 0
    retry_scale: float = 1.0
    timeout: float = DELIVERY_TIMEOUT_SECONDS
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    faults: DeliveryFaults = field(default_factory=DeliveryFaults)
    attempts: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=500))
    rng: random.Random = field(init=False)
    deliveries: Deliveries = field(default_factory=Deliveries)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def set_faults(self, loss: float, duplicate: float, reorder_max_delay: float, seed: int | None) -> None:
        """Replace the fault settings; a seed makes the following draws reproducible."""
        for name, p in (("loss", loss), ("duplicate", duplicate)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1]")
        if reorder_max_delay < 0:
            raise ValueError("reorder_max_delay must be >= 0")
        self.faults = DeliveryFaults(loss, duplicate, reorder_max_delay)
        if seed is not None:
            self.rng = random.Random(seed)

    def subscribe(
        self, url: str, topics: list[str], secret: str | None = None, description: str | None = None
    ) -> Subscription:
        """Add a subscription; a secret is generated when the caller gives none."""
        unknown = [t for t in topics if t not in TOPICS]
        if not topics or unknown:
            raise ValueError(f"unknown topics: {unknown}" if unknown else "topics is required")
        if secret is not None:
            Webhook(secret)  # raises on a secret that is not base64
        sub_id = "".join(self.rng.choices(_ID_ALPHABET, k=12))
        sub = Subscription(sub_id, url, list(topics), secret or new_secret(self.rng), self.clock(), description)
        self.subscriptions[sub.id] = sub
        return sub

    def publish(self, topic: str, payload: dict[str, Any]) -> str | None:
        """Queue `payload` for every subscription to `topic`; returns the webhook-id, if any."""
        targets = [s for s in self.subscriptions.values() if s.enabled and topic in s.topics]
        if not targets:
            return None
        msg_id = "msg_" + "".join(self.rng.choices(_ID_ALPHABET, k=27))
        body = json.dumps(payload, separators=(",", ":"))
        self.counters["webhooks_published"] += 1
        for sub in targets:
            if self.rng.random() < self.faults.loss:
                self.counters["webhooks_lost"] += 1
                continue
            copies = 1
            if self.rng.random() < self.faults.duplicate:
                self.counters["webhooks_duplicated"] += 1
                copies = 2
            for _ in range(copies):
                delay = self.rng.uniform(0.0, self.faults.reorder_max_delay)
                self.deliveries.spawn(self._deliver(sub, msg_id, topic, body, delay))
        return msg_id

    async def _deliver(self, sub: Subscription, msg_id: str, topic: str, body: str, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        for wait in RETRY_SCHEDULE_SECONDS:
            if wait:
                await asyncio.sleep(wait * self.retry_scale)
            if await self._attempt(sub, msg_id, topic, body):
                self.counters["webhooks_delivered"] += 1
                return
        self.counters["webhooks_failed"] += 1

    async def _attempt(self, sub: Subscription, msg_id: str, topic: str, body: str) -> bool:
        now = self.clock()
        # Each attempt is signed afresh: the timestamp is part of the signed content.
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(sub.secret).sign(msg_id, now, body),
            "x-webhook-topic": topic,
            "content-type": "application/json",
        }
        status: int | None = None
        self.counters["webhook_attempts"] += 1
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with self.deliveries.session.post(
                sub.url, data=body.encode(), headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as resp:
                await resp.read()
                status = resp.status
        self.attempts.append(
            {"webhook_id": msg_id, "topic": topic, "url": sub.url, "status": status, "at": now.isoformat()}
        )
        return status is not None and 200 <= status < 300

    async def idle(self) -> None:
        """Wait until every queued delivery has succeeded or given up (tests use this)."""
        await self.deliveries.drain()

    async def close(self) -> None:
        """Cancel pending deliveries and close the delivery session."""
        await self.deliveries.close()
