"""MercadoLibre notification intake: path-secret check, account check, pointer events.

ML signs nothing (APIS.md §4): the only credential is the secret in the callback path
(`/webhooks/mercadolibre/<webhook_secret>`), plus checking that `user_id` and `application_id` are
ours. The body is a pointer and is never trusted: the daemon fetches `resource` with our own token.
"""

from __future__ import annotations

import hmac
import json
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from syncd.capture.events import Event
from syncd.channels.mercadolibre.mapping import notification_event
from syncd.channels.mercadolibre.models import NotificationBody
from syncd.config import MercadoLibreSettings

# Topics whose resource the Fetcher can resolve; deliveries of other topics are acknowledged and dropped.
HANDLED_TOPICS = frozenset({"orders_v2", "orders", "items", "shipments", "stock-locations", "stock-location"})


def parse_notification(payload: Any, user_id: int, application_id: int) -> tuple[NotificationBody, dict[str, Any]]:
    """Validate a delivered body and that it is for our account; raises ValueError with a reason."""
    if not isinstance(payload, dict):
        raise ValueError("notification body must be a JSON object")
    try:
        note = NotificationBody.model_validate(payload)
    except ValidationError as err:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in err.errors())
        raise ValueError(f"malformed notification ({fields})") from None
    if not note.resource.startswith("/"):
        raise ValueError("notification resource must be a path")
    if note.user_id != user_id:
        raise ValueError("notification is for another seller (user_id mismatch)")
    if application_id and note.application_id != application_id:
        raise ValueError("notification is for another application (application_id mismatch)")
    return note, payload


class MercadoLibreWebhook:
    """WebhookReceiver for ML notifications."""

    def __init__(self, settings: MercadoLibreSettings) -> None:
        self._secret = settings.webhook_secret.get_secret_value().encode()
        self._user_id = settings.user_id
        self._application_id = settings.application_id

    def authenticate(self, path_secret: str | None, headers: dict[str, str], body: bytes) -> bool:
        """True when the path secret matches (constant time); an unset secret refuses everything."""
        if not self._secret or path_secret is None:
            return False
        return hmac.compare_digest(path_secret.encode(), self._secret)

    def parse(self, headers: dict[str, str], body: bytes, now: datetime) -> list[Event]:
        """One Notification event, or none for topics syncd does not follow; ValueError if malformed."""
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError("notification body is not JSON") from None
        note, raw = parse_notification(payload, self._user_id, self._application_id)
        if note.topic not in HANDLED_TOPICS:
            return []
        return [notification_event(note, raw, now)]
