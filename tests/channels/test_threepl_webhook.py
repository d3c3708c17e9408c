"""Standard Webhooks signatures on 3PL shipment deliveries, and the simulator's delivery faults."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr
from standardwebhooks import Webhook

from syncd.capture.events import Event, Shipment
from syncd.channels.threepl import ThreePLChannel, ThreePLWebhookReceiver
from syncd.config import ThreePLSettings
from syncd.sandbox.common import SimServer
from syncd.sandbox.threepl import start
from syncd.sandbox.threepl_state import ThreePLState

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_b3RoZXItc2VjcmV0LW5vdC1vdXJzLTEyMzQ1Ng=="
SHIPMENT = {
    "id": 900123,
    "order_id": 500077,
    "reference_id": "mercadolibre:2000001",
    "status": "Completed",
    "actual_fulfillment_date": "2026-10-01T12:00:00Z",
    "last_update_at": "2026-10-01T12:00:00Z",
    "location": {"id": 1, "name": "Cicero (IL)"},
    "products": [
        {
            "id": 11,
            "reference_id": "A",
            "sku": "A",
            "name": "A",
            "inventory_items": [{"id": 1001, "name": "A", "quantity": 2, "quantity_committed": 2}],
        },
        {
            "id": 12,
            "reference_id": "B",
            "sku": "B",
            "name": "B",
            "inventory_items": [{"id": 1002, "name": "B", "quantity": 1, "quantity_committed": 1}],
        },
    ],
}
BODY = json.dumps(SHIPMENT).encode()


def signed(
    body: bytes, msg_id: str = "msg_2Nf3kq", when: datetime | None = None, secret: str = SECRET
) -> dict[str, str]:
    when = when or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, when, body.decode()),
        "x-webhook-topic": "order.shipped",
        "Content-Type": "application/json",
    }


receiver = ThreePLWebhookReceiver(SECRET, "main")


def test_good_signature_is_accepted() -> None:
    assert receiver.authenticate(None, signed(BODY), BODY)


def test_header_names_are_matched_without_regard_to_case() -> None:
    headers = {k.title(): v for k, v in signed(BODY).items()}
    assert receiver.authenticate(None, headers, BODY)


def test_signature_from_another_secret_is_refused() -> None:
    assert not receiver.authenticate(None, signed(BODY, secret=OTHER_SECRET), BODY)


def test_tampered_body_is_refused() -> None:
    headers = signed(BODY)
    assert not receiver.authenticate(None, headers, BODY.replace(b'"quantity": 2', b'"quantity": 9'))


def test_stale_timestamp_is_refused() -> None:
    old = datetime.now(UTC) - timedelta(minutes=6)
    assert not receiver.authenticate(None, signed(BODY, when=old), BODY)


def test_timestamp_from_the_future_is_refused() -> None:
    ahead = datetime.now(UTC) + timedelta(minutes=6)
    assert not receiver.authenticate(None, signed(BODY, when=ahead), BODY)


def test_timestamp_within_tolerance_is_accepted() -> None:
    recent = datetime.now(UTC) - timedelta(minutes=4)
    assert receiver.authenticate(None, signed(BODY, when=recent), BODY)


def test_body_replayed_under_another_webhook_id_is_refused() -> None:
    headers = signed(BODY, msg_id="msg_original")
    headers["webhook-id"] = "msg_replayed"
    assert not receiver.authenticate(None, headers, BODY)


def test_one_matching_signature_among_several_is_enough() -> None:
    headers = signed(BODY)
    headers["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"]
    assert receiver.authenticate(None, headers, BODY)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda h: h.pop("webhook-signature"),
        lambda h: h.pop("webhook-id"),
        lambda h: h.pop("webhook-timestamp"),
        lambda h: h.__setitem__("webhook-signature", "garbage-without-comma"),
        lambda h: h.__setitem__("webhook-signature", "v1,***not base64***"),
        lambda h: h.__setitem__("webhook-timestamp", "yesterday"),
    ],
)
def test_missing_or_malformed_headers_are_refused_not_raised(mangle: object) -> None:
    headers = signed(BODY)
    mangle(headers)  # type: ignore[operator]
    assert not receiver.authenticate(None, headers, BODY)


def test_without_a_configured_secret_nothing_authenticates() -> None:
    assert not ThreePLWebhookReceiver("", "main").authenticate(None, signed(BODY), BODY)


def test_order_shipped_parses_to_one_shipment_per_product_line() -> None:
    now = datetime(2026, 10, 1, 12, 0, 5, tzinfo=UTC)
    events = receiver.parse(signed(BODY), BODY, now)
    bodies = [e.body for e in events]
    assert [(b.sku, b.qty, b.order_ref, b.location) for b in bodies if isinstance(b, Shipment)] == [
        ("A", 2, "mercadolibre:2000001", "main"),
        ("B", 1, "mercadolibre:2000001", "main"),
    ]
    assert all(e.source == "threepl" and e.received_at == now for e in events)
    assert events[0].dedupe_key == "threepl:shipment:900123:11:1001"


def test_enveloped_body_parses_the_same() -> None:
    wrapped = json.dumps({"topic": "order.shipped", "data": SHIPMENT}).encode()
    headers = {"webhook-id": "x"}
    events = receiver.parse(headers, wrapped, datetime.now(UTC))
    assert [e.dedupe_key for e in events] == [
        e.dedupe_key for e in receiver.parse(signed(BODY), BODY, datetime.now(UTC))
    ]


def test_topics_other_than_shipped_carry_no_events() -> None:
    headers = signed(BODY)
    headers["x-webhook-topic"] = "order.shipment.delivered"
    assert receiver.parse(headers, BODY, datetime.now(UTC)) == []


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"x-webhook-topic": "order.shipped"}, b"not json"),
        ({}, BODY),
        ({"x-webhook-topic": "order.shipped"}, b'{"id": "x"}'),
    ],
)
def test_malformed_deliveries_raise_value_error(headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(ValueError):
        receiver.parse(headers, body, datetime.now(UTC))


def test_malformed_secret_is_a_config_error_that_hides_the_secret() -> None:
    with pytest.raises(ValueError) as caught:
        ThreePLWebhookReceiver("whsec_%%%not-base64%%%", "main")
    assert "%%%not-base64%%%" not in str(caught.value)


# -- the simulator's deliveries, end to end -------------------------------------------------------


class Endpoint:
    """A stand-in for the daemon's /webhooks/threepl: authenticate, parse, answer."""

    def __init__(self, channel: ThreePLChannel, fail_first: int = 0) -> None:
        self.channel = channel
        self.fail_first = fail_first
        self.attempts: list[str] = []
        self.refused = 0
        self.events: list[Event] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        if not self.channel.authenticate(None, headers, body):
            self.refused += 1
            return web.Response(status=401)
        self.attempts.append(headers["webhook-id"])
        if len(self.attempts) <= self.fail_first:
            return web.Response(status=503)
        self.events.extend(self.channel.parse(headers, body, datetime.now(UTC)))
        return web.Response(status=204)


@pytest.fixture
async def rig() -> AsyncIterator[tuple[ThreePLState, SimServer, aiohttp.ClientSession]]:
    state = ThreePLState("pat", seed=11, retry_scale=0.001)
    state.seed([{"sku": s, "on_hand": 100} for s in ("A", "B", "C")])
    server = await start(state)
    async with aiohttp.ClientSession() as session:
        yield state, server, session
    await server.stop()


async def serve(endpoint: Endpoint) -> SimServer:
    app = web.Application()
    app.router.add_post("/webhooks/threepl", endpoint.handle)
    hook = SimServer(app)
    await hook.start()
    return hook


def channel_for(server: SimServer, session: aiohttp.ClientSession) -> ThreePLChannel:
    cfg = ThreePLSettings(
        enabled=True, api_base=server.url, api_token=SecretStr("pat"), webhook_secret=SecretStr(SECRET), location="main"
    )
    return ThreePLChannel(cfg, session)


async def test_simulated_ship_delivers_a_signed_order_shipped(
    rig: tuple[ThreePLState, SimServer, aiohttp.ClientSession],
) -> None:
    state, server, session = rig
    endpoint = Endpoint(channel_for(server, session))
    hook = await serve(endpoint)
    try:
        state.webhooks.subscribe(f"{hook.url}/webhooks/threepl", ["order.shipped"], SECRET)
        shipment = state.ship("amazon:111-9", [("A", 3), ("C", 1)])
        await state.webhooks.idle()
    finally:
        await hook.stop()
    assert endpoint.refused == 0
    assert endpoint.attempts == [shipment.webhook_id]
    assert [(e.body.sku, e.body.qty, e.body.order_ref) for e in endpoint.events if isinstance(e.body, Shipment)] == [
        ("A", 3, "amazon:111-9"),
        ("C", 1, "amazon:111-9"),
    ]


async def test_failed_delivery_is_retried_with_the_same_webhook_id(
    rig: tuple[ThreePLState, SimServer, aiohttp.ClientSession],
) -> None:
    state, server, session = rig
    endpoint = Endpoint(channel_for(server, session), fail_first=2)
    hook = await serve(endpoint)
    try:
        state.webhooks.subscribe(f"{hook.url}/webhooks/threepl", ["order.shipped"], SECRET)
        shipment = state.ship("amazon:retry", [("B", 1)])
        await state.webhooks.idle()
    finally:
        await hook.stop()
    assert endpoint.attempts == [shipment.webhook_id] * 3
    assert len(endpoint.events) == 1
    assert state.counters["webhook_attempts"] == 3 and state.counters["webhooks_delivered"] == 1


async def test_delivery_to_a_dead_endpoint_gives_up_after_the_schedule(
    rig: tuple[ThreePLState, SimServer, aiohttp.ClientSession],
) -> None:
    state, _, _ = rig
    state.webhooks.retry_scale = 1e-6  # the full schedule is ~27.6 h
    state.webhooks.subscribe("http://127.0.0.1:9/webhooks/threepl", ["order.shipped"], SECRET)
    state.ship("amazon:dead", [("A", 1)])
    await state.webhooks.idle()
    assert state.counters["webhooks_failed"] == 1 and state.counters["webhook_attempts"] == 8


async def test_seeded_loss_and_duplicates_dedupe_to_the_delivered_shipments(
    rig: tuple[ThreePLState, SimServer, aiohttp.ClientSession],
) -> None:
    state, server, session = rig
    endpoint = Endpoint(channel_for(server, session))
    hook = await serve(endpoint)
    try:
        state.webhooks.subscribe(f"{hook.url}/webhooks/threepl", ["order.shipped"], SECRET)
        state.webhooks.set_faults(loss=0.3, duplicate=0.3, reorder_max_delay=0.02, seed=5)
        shipments = [state.ship(f"amazon:o{n}", [("A", 1)]) for n in range(20)]
        await state.webhooks.idle()
    finally:
        await hook.stop()
    lost, dup = state.counters["webhooks_lost"], state.counters["webhooks_duplicated"]
    assert lost > 0 and dup > 0  # the seed exercises both faults
    assert len(endpoint.attempts) == len(shipments) - lost + dup
    unique = {e.dedupe_key for e in endpoint.events}
    assert len(unique) == len(shipments) - lost
    # What the webhooks missed, the shipments poll (the backstop) recovers under the same keys.
    polled = await channel_for(server, session).poll("shipments", None)
    assert unique < {e.dedupe_key for e in polled.events}
    assert len(polled.events) == len(shipments)


async def test_webhook_api_creates_lists_and_deletes_subscriptions(
    rig: tuple[ThreePLState, SimServer, aiohttp.ClientSession],
) -> None:
    _, server, session = rig
    auth = {"Authorization": "Bearer pat"}
    body = {"topics": ["order.shipped"], "url": "https://example.test/hook", "description": "syncd"}
    async with session.post(f"{server.url}/2026-07/webhook", json=body, headers=auth) as resp:
        assert resp.status == 200
        created = await resp.json()
    assert created["secret"].startswith("whsec_") and isinstance(created["id"], str)
    async with session.get(f"{server.url}/2026-07/webhook", headers=auth) as resp:
        listed = await resp.json()
    assert [i["id"] for i in listed["items"]] == [created["id"]] and "secret" not in listed["items"][0]
    async with session.delete(f"{server.url}/2026-07/webhook/{created['id']}", headers=auth) as resp:
        assert resp.status == 204
