"""`POST /webhooks/amazon`: SP-API notifications delivered by an EventBridge API destination.

Amazon signs nothing; EventBridge authenticates itself with the header its connection is set to
send (API_KEY authorization, header `x-syncd-webhook-secret`). The body is the EventBridge event
whose `detail` is the SP-API notification. ORDER_CHANGE is SQS-only on Amazon's side; forwarded
by an EventBridge Pipe (SQS source, API-destination target) it arrives either re-shaped into the
same event (input transformer) or as the raw SQS record, whose `body` string is the notification;
both are accepted, as is a Pipe's batch (a JSON array of either).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from syncd.capture.events import Event
from syncd.channels.amazon.mapping import notification_events
from syncd.channels.amazon.models import EventBridgeEvent, SpNotification

SECRET_HEADER = "x-syncd-webhook-secret"


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value whatever the casing the caller's mapping uses."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def authenticate(secret: str, headers: Mapping[str, str]) -> bool:
    """True when the delivery carries the configured secret; no secret configured refuses all."""
    given = header(headers, SECRET_HEADER)
    if not secret or given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), secret.encode("utf-8"))


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    return f"{where}: {first['msg']}"


def _notification(item: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(notification, raw delivery) from one EventBridge event or one Pipe-forwarded SQS record."""
    if not isinstance(item, dict):
        raise ValueError("delivery is not a JSON object")
    if "detail" in item:
        try:
            event = EventBridgeEvent.model_validate(item)
        except ValidationError as err:
            raise ValueError(f"not an EventBridge event: {_describe(err)}") from None
        return event.detail, item
    body = item.get("body")
    if isinstance(body, str) and ("messageId" in item or item.get("eventSource") == "aws:sqs"):
        try:
            inner = json.loads(body)
        except ValueError:
            raise ValueError("SQS record body is not JSON") from None
        if not isinstance(inner, dict):
            raise ValueError("SQS record body is not a JSON object")
        return inner, item
    raise ValueError("neither an EventBridge event (no `detail`) nor an SQS record (no `body`)")


def parse_notification(
    payload: dict[str, Any], seller_id: str, now: datetime, raw: dict[str, Any]
) -> list[Event]:
    """Events for one SP-API notification object; ValueError with a reason when malformed."""
    try:
        notification = SpNotification.model_validate(payload)
        return notification_events(notification, seller_id, now, raw)
    except ValidationError as err:
        raise ValueError(f"malformed SP-API notification: {_describe(err)}") from None


def parse(body: bytes, seller_id: str, now: datetime) -> list[Event]:
    """Normalize one delivery; ValueError with a reason when it is malformed."""
    try:
        document = json.loads(body)
    except ValueError:
        raise ValueError("body is not JSON") from None
    items = document if isinstance(document, list) else [document]
    if not items:
        raise ValueError("empty batch")
    events: list[Event] = []
    for item in items:
        payload, raw = _notification(item)
        events.extend(parse_notification(payload, seller_id, now, raw))
    return events
