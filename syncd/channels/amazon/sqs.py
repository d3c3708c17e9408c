"""SQS long polling for SP-API notifications (ORDER_CHANGE is delivered only to SQS).

For hosts without a public URL. The queue is standard SQS: at-least-once and unordered, so every
message becomes events with the same NotificationId-based dedupe key as the webhook path. The
caller deletes a message only once its events are durable; an undeleted message comes back after
the queue's visibility timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from syncd.capture.events import Event
from syncd.channels.amazon.webhook import parse_notification
from syncd.channels.base import Permanent, Transient
from syncd.config import AmazonSettings

log = structlog.get_logger(__name__)

# Error codes that no retry will fix: wrong queue, wrong credentials, missing permission.
_PERMANENT_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
}


def _translate(err: Exception, action: str) -> Exception:
    if isinstance(err, ClientError):
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code in _PERMANENT_CODES:
            return Permanent(f"amazon sqs {action}: {code}")
        return Transient(f"amazon sqs {action}: {code or 'error'}")
    return Transient(f"amazon sqs {action}: {type(err).__name__}")


class SqsNotificationConsumer:
    """Receives SP-API notifications from one SQS queue and deletes them once handled."""

    def __init__(
        self,
        settings: AmazonSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not settings.sqs_queue_url:
            raise Permanent("amazon: sqs_queue_url is not configured")
        self.settings = settings
        self.queue_url = settings.sqs_queue_url
        self._clock = clock
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None

    async def __aenter__(self) -> SqsNotificationConsumer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the SQS client (credentials from settings, else the standard AWS chain)."""
        if self._client is not None:
            return
        options: dict[str, Any] = {"region_name": self.settings.sqs_region}
        if self.settings.sqs_endpoint_url:
            options["endpoint_url"] = self.settings.sqs_endpoint_url
        if self.settings.aws_access_key_id:
            options["aws_access_key_id"] = self.settings.aws_access_key_id
            options["aws_secret_access_key"] = self.settings.aws_secret_access_key.get_secret_value()
        self._client = await self._stack.enter_async_context(get_session().create_client("sqs", **options))

    async def close(self) -> None:
        """Close the client."""
        self._client = None
        await self._stack.aclose()

    async def receive(self, wait_seconds: int = 20, max_messages: int = 10) -> list[tuple[list[Event], str]]:
        """Long-poll once: (events, receipt handle) per message that parsed.

        A message that does not parse is logged and left on the queue, for the queue's redrive
        policy to move to its dead-letter queue; deleting it here would lose it silently.
        """
        if self._client is None:
            await self.start()
        try:
            reply = await self._client.receive_message(
                QueueUrl=self.queue_url,
                WaitTimeSeconds=max(0, min(20, wait_seconds)),
                MaxNumberOfMessages=max(1, min(10, max_messages)),
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            )
        except (BotoCoreError, ClientError) as err:
            raise _translate(err, "receive") from err
        out: list[tuple[list[Event], str]] = []
        for message in reply.get("Messages", []):
            handle = message["ReceiptHandle"]
            try:
                payload = json.loads(message.get("Body", ""))
                if not isinstance(payload, dict):
                    raise ValueError("body is not a JSON object")
                raw = {"MessageId": message.get("MessageId"), "Body": payload}
                events = parse_notification(payload, self.settings.seller_id, self._clock(), raw)
            except ValueError as err:
                log.warning("amazon.sqs.malformed", message_id=message.get("MessageId"), reason=str(err))
                continue
            out.append((events, handle))
        return out

    async def delete(self, receipt_handle: str) -> None:
        """Delete a handled message so it is not delivered again."""
        if self._client is None:
            await self.start()
        try:
            await self._client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt_handle)
        except (BotoCoreError, ClientError) as err:
            raise _translate(err, "delete") from err

    async def run(
        self,
        submit: Callable[[list[Event]], Awaitable[object]],
        stopping: asyncio.Event,
        wait_seconds: int = 20,
        max_backoff: float = 60.0,
    ) -> None:
        """Receive until `stopping` is set: `submit` each message's events, then delete it.

        `submit` must return only once the events are durable (the inbox write); a message is
        deleted after that, so a crash in between redelivers it and the dedupe keys make the
        replay a no-op. SQS failures back off and are logged once until they recover; a
        Permanent one (no such queue, refused credentials) ends the loop by raising.
        Cancel the task to stop without waiting out a long poll.
        """
        delay, failing = 1.0, False
        while not stopping.is_set():
            try:
                batch = await self.receive(wait_seconds)
            except Transient as err:
                if not failing:
                    log.warning("amazon.sqs.failing", error=str(err))
                    failing = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), delay)
                delay = min(max_backoff, delay * 2)
                continue
            if failing:
                log.info("amazon.sqs.recovered")
                delay, failing = 1.0, False
            for events, handle in batch:
                await submit(events)
                try:
                    await self.delete(handle)
                except Transient as err:
                    # It comes back after the visibility timeout; its events are already stored.
                    log.warning("amazon.sqs.delete_failed", error=str(err))
