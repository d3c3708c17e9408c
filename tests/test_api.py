"""The admin API over loopback against a real daemon and SQLite file."""

from __future__ import annotations

import asyncio

from tests.conftest import Harness


async def wait_for(predicate, within: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    """Poll an async predicate until true (pushes happen in the background)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await predicate():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_count_sets_available_and_pushes_to_every_listing(harness: Harness) -> None:
    status, body = await harness.count("MUG", 12)
    assert status == 201, body
    product = await harness.product("MUG")
    assert (product["on_hand"], product["committed"], product["reserved"], product["available"]) == (12, 0, 0, 12)
    amazon, ml = harness.channels["amazon"], harness.channels["mercadolibre"]

    async def pushed() -> bool:
        return amazon.qty("MUG-A") == 12 and ml.qty("MLM1") == 12 and ml.qty("MLM3") == 6

    await wait_for(pushed)
    assert harness.channels["amazon"].qty("SET-A") == 6  # kit: floor(12 / 2)


async def test_listing_rules_apply_buffer_share_and_cap(harness: Harness) -> None:
    await harness.count("TEE-S", 4)
    await harness.count("TEE-M", 30)
    tee_s = await harness.product("TEE-S")
    assert tee_s["available"] == 3  # buffer 1
    tee_m = await harness.product("TEE-M")
    targets = {(x["channel"], x["external_id"]): x["target"] for x in tee_m["listings"]}
    assert targets == {("mercadolibre", "MLM2"): 5, ("amazon", "TEE-M"): 15}  # cap 5, share 50 %


async def test_second_reservation_for_last_unit_is_refused(harness: Harness) -> None:
    await harness.count("MUG", 1)
    first = await harness.call("POST", "/api/reservations", {"sku": "MUG", "qty": 1, "ttl_seconds": 60})
    second = await harness.call("POST", "/api/reservations", {"sku": "MUG", "qty": 1, "ttl_seconds": 60})
    assert first[0] == 201 and second[0] == 409
    assert second[1]["error"].startswith("only 0")


async def test_two_hundred_concurrent_reservations_for_ten_units_grant_exactly_ten(harness: Harness) -> None:
    await harness.count("MUG", 10)
    results = await asyncio.gather(*[
        harness.call("POST", "/api/reservations", {"sku": "MUG", "qty": 1, "ttl_seconds": 600}) for _ in range(200)
    ])
    statuses = [s for s, _ in results]
    assert statuses.count(201) == 10
    assert statuses.count(409) == 190
    product = await harness.product("MUG")
    assert product["reserved"] == 10 and product["available"] == 0


async def test_released_reservation_frees_the_unit(harness: Harness) -> None:
    await harness.count("MUG", 1)
    status, held = await harness.call("POST", "/api/reservations", {"sku": "MUG", "qty": 1})
    assert status == 201
    status, _ = await harness.call("DELETE", f"/api/reservations/{held['id']}")
    assert status == 200
    assert (await harness.product("MUG"))["available"] == 1
    status, _ = await harness.call("DELETE", f"/api/reservations/{held['id']}")
    assert status == 404


async def test_count_older_than_the_last_accepted_is_refused_and_kept(harness: Harness) -> None:
    assert (await harness.count("MUG", 10, "2026-12-01T10:00:00Z"))[0] == 201
    status, body = await harness.count("MUG", 99, "2026-12-01T09:00:00Z")
    assert status == 409 and body["detail"]["verdict"] == "stale"
    product = await harness.product("MUG")
    assert product["on_hand"] == 10
    rejected = product["explain"]["pools"][0]["rejected_counts"]
    assert [r["qty"] for r in rejected] == [99]


async def test_lower_priority_count_is_outranked_within_the_authority_window(harness: Harness) -> None:
    assert (await harness.count("MUG", 10, "2026-12-01T10:00:00Z", source="threepl"))[0] == 201
    status, body = await harness.count("MUG", 3, "2026-12-01T10:30:00Z", source="manual")
    assert status == 409 and body["detail"]["verdict"] == "outranked"
    assert (await harness.count("MUG", 3, "2026-12-01T12:00:00Z", source="manual"))[0] == 201
    assert (await harness.product("MUG"))["on_hand"] == 3


async def test_bad_input_gets_a_clear_4xx_and_changes_nothing(harness: Harness) -> None:
    status, body = await harness.call("POST", "/api/stock/counts", data=b"{not json",
                                      headers={"Content-Type": "application/json"})
    assert status == 400 and body["error"] == "malformed JSON"
    status, body = await harness.count("NOPE", 3)
    assert status == 404 and "unknown SKU" in body["error"]
    status, body = await harness.count("MUG", -1)
    assert status == 400 and body["detail"][0]["field"] == "qty"
    status, body = await harness.call("POST", "/api/reservations", {"sku": "MUG", "qty": 0})
    assert status == 400
    status, body = await harness.call("POST", "/api/stock/counts", {"sku": "MUG", "location": "nowhere", "qty": 1})
    assert status == 422 and "unknown location" in body["error"]
    assert (await harness.product("MUG"))["on_hand"] == 0
    status, body = await harness.call("GET", "/api/products/NOPE")
    assert status == 404


async def test_catalog_with_ambiguous_mapping_is_refused_whole(harness: Harness) -> None:
    bad = ("sku,title,location,channel,external_id,variation_id,safety_buffer,cap,share\n"
           "NEW,New,main,amazon,NEW-A,,0,,\n"
           "OTHER,Other,main,amazon,NEW-A,,0,,\n")
    status, body = await harness.call("POST", "/api/catalog", data=bad.encode())
    assert status == 422
    assert any("ambiguous" in p for p in body["detail"])
    status, _ = await harness.call("GET", "/api/products/NEW")
    assert status == 404


async def test_catalog_remapping_a_stored_listing_is_refused(harness: Harness) -> None:
    bad = ("sku,title,location,channel,external_id,variation_id,safety_buffer,cap,share\n"
           "BOX,Box,main,amazon,MUG-A,,0,,\n")
    status, body = await harness.call("POST", "/api/catalog", data=bad.encode())
    assert status == 422 and "already mapped to MUG" in body["detail"][0]


async def test_catalog_export_round_trips(harness: Harness) -> None:
    status, text = await harness.call("GET", "/api/catalog")
    assert status == 200
    status, body = await harness.call("POST", "/api/catalog", data=text.encode())
    assert status == 200, body
    status, again = await harness.call("GET", "/api/catalog")
    assert again == text


async def test_status_is_ok_after_polls_and_metrics_expose_it(harness: Harness) -> None:
    async def ok() -> bool:
        status, doc = await harness.call("GET", "/status")
        return status == 200 and all(c["last_success"] for c in doc["channels"].values())

    await wait_for(ok)
    status, doc = await harness.call("GET", "/status")
    assert set(doc["channels"]) == {"amazon", "mercadolibre"}
    for ch in doc["channels"].values():
        assert ch["state"] == "ok" and ch["last_success"] is not None
    status, text = await harness.call("GET", "/metrics")
    assert status == 200
    assert 'syncd_channel_state{channel="amazon",state="ok"} 1.0' in text


async def test_cross_site_post_is_refused(harness: Harness) -> None:
    status, _ = await harness.call("POST", "/api/stock/counts", {"sku": "MUG", "location": "main", "qty": 1},
                                   headers={"Origin": "http://evil.example"})
    assert status == 403
    assert (await harness.product("MUG"))["on_hand"] == 0


async def test_idempotency_key_makes_a_retried_action_a_no_op(harness: Harness) -> None:
    body = {"sku": "MUG", "location": "main", "qty": 5, "ref": "PO-1"}
    headers = {"Idempotency-Key": "abc"}
    first = await harness.call("POST", "/api/stock/receipts", body, headers=headers)
    again = await harness.call("POST", "/api/stock/receipts", body, headers=headers)
    assert first[1]["outcome"] == "applied" and again[1]["outcome"] == "duplicate"
    assert (await harness.product("MUG"))["on_hand"] == 5


async def test_explain_shows_count_movements_holds_and_pushes(harness: Harness) -> None:
    await harness.count("MUG", 10, "2026-12-01T10:00:00Z")
    await harness.call("POST", "/api/stock/receipts", {"sku": "MUG", "location": "main", "qty": 2, "ref": "PO-7"})
    await harness.call("POST", "/api/reservations", {"sku": "MUG", "qty": 3})
    product = await harness.product("MUG")
    pool = product["explain"]["pools"][0]
    assert pool["count"] == {"qty": 10, "as_of": "2026-12-01T10:00:00.000000+00:00", "source": "manual"}
    assert [m["ref"] for m in pool["movements_since_count"]] == ["PO-7"]
    assert [r["qty"] for r in product["explain"]["reservations"]] == [3]
    assert product["available"] == 9


async def test_oversell_raises_an_alert_naming_the_orders_and_pushes_zero_everywhere(harness: Harness) -> None:
    from datetime import UTC, datetime

    from syncd.capture.events import Event, OrderLineIn, OrderUpsert
    from syncd.domain.models import OrderState
    from syncd.store.apply import ingest

    await harness.count("MUG", 3)
    daemon = harness.daemon
    assert daemon.service is not None
    policy = daemon.service.policy
    for channel, external, order in (("amazon", "MUG-A", "A-1"), ("mercadolibre", "MLM1", "M-1")):
        event = Event(dedupe_key=f"{channel}:{order}", source=channel, body=OrderUpsert(
            channel=channel, order_id=order, state=OrderState.PAID, last_updated=datetime.now(UTC),
            lines=[OrderLineIn(line_id="1", external_id=external, qty=2)]))
        await daemon.writer.submit(lambda tx, e=event: ingest(tx, e, policy))
    product = await harness.product("MUG")
    assert (product["committed"], product["available"]) == (4, 0)
    _, alerts = await harness.call("GET", "/api/alerts")
    [oversell] = [a for a in alerts if a["kind"] == "oversell"]
    assert oversell["detail"]["oversold_by"] == 1
    assert set(oversell["detail"]["orders"]) <= {"amazon:A-1", "mercadolibre:M-1"}
    assert oversell["detail"]["orders"]
    amazon, ml = harness.channels["amazon"], harness.channels["mercadolibre"]

    async def zero_everywhere() -> bool:
        return amazon.qty("MUG-A") == 0 and ml.qty("MLM1") == 0 and ml.qty("MLM3") == 0

    await wait_for(zero_everywhere)


async def test_reservation_lapses_after_its_ttl_and_the_unit_is_sellable_again(harness: Harness) -> None:
    await harness.count("MUG", 2)
    status, _ = await harness.call("POST", "/api/reservations", {"sku": "MUG", "qty": 2, "ttl_seconds": 1})
    assert status == 201
    assert (await harness.product("MUG"))["available"] == 0

    async def lapsed() -> bool:
        return (await harness.product("MUG"))["available"] == 2

    await wait_for(lapsed, within=10)  # the sweep recomputes once the hold has expired


async def test_loopback_admin_refuses_a_foreign_host_header(harness: Harness) -> None:
    status, _ = await harness.call("GET", "/status", headers={"Host": "evil.example:8781"})
    assert status == 403
    status, _ = await harness.call("GET", "/status", headers={"Host": "localhost"})
    assert status in (200, 503)


async def test_a_receipt_reported_after_a_later_count_is_not_counted_twice(harness: Harness) -> None:
    from datetime import UTC, datetime, timedelta

    from syncd.capture.events import Event, Receipt
    from syncd.store.apply import ingest

    now = datetime.now(UTC)
    await harness.count("MUG", 6, (now - timedelta(hours=2)).isoformat(), source="threepl")
    # The 3PL's stock poll already sees the 24 received units; its receipt poll reports them later.
    await harness.count("MUG", 30, (now - timedelta(minutes=5)).isoformat(), source="threepl")
    _, alerts = await harness.call("GET", "/api/alerts")
    assert [a["detail"]["drift"] for a in alerts if a["kind"] == "drift"] == [24]
    assert harness.daemon.service is not None
    policy = harness.daemon.service.policy
    event = Event(dedupe_key="threepl:receipt:WRO-1", source="threepl", body=Receipt(
        sku="MUG", location="main", qty=24, ref="WRO-1", at=now - timedelta(minutes=20)))
    await harness.daemon.writer.submit(lambda tx: ingest(tx, event, policy))
    product = await harness.product("MUG")
    assert product["on_hand"] == 30  # not 54
    _, alerts = await harness.call("GET", "/api/alerts")
    assert not [a for a in alerts if a["kind"] == "drift"]  # the receipt explained the drift away
    _, rows = await harness.call("GET", "/api/alerts?all=1")
    assert any("explained by WRO-1" in a["message"] for a in rows)
