"""Pushing quantity, price and status to Amazon listings and reading them back, over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from syncd.capture.events import ListingObservation
from syncd.channels.amazon import AmazonChannel
from syncd.channels.base import Channel, ListingRef, Permanent, Transient
from syncd.config import AmazonSettings
from syncd.domain.models import Field
from syncd.sandbox.amazon import AmazonSimulator, SimConfig
from syncd.sandbox.common import OutageMode

DELAY = 0.15  # the simulator's eventual-consistency delay in these tests


@pytest.fixture
async def sim() -> AsyncIterator[AmazonSimulator]:
    async with AmazonSimulator(SimConfig(consistency_delay=DELAY, search_lag=0.0)) as running:
        market = running.market
        market.seed_listing({"sku": "MUG", "quantity": 3, "price": "9.90", "product_type": "DRINKING_CUP"})
        market.seed_listing({"sku": "KETTLE", "fba": True, "price": "59.00"})
        yield running


@pytest.fixture
async def amazon(sim: AmazonSimulator) -> AsyncIterator[AmazonChannel]:
    async with aiohttp.ClientSession() as session:
        yield AmazonChannel(AmazonSettings(**sim.client_settings()), session)


async def quantity(amazon: AmazonChannel, sku: str) -> int | None:
    [seen] = await amazon.read_listings([ListingRef(sku)])
    return seen.quantity


async def test_adapter_is_a_channel_with_a_poll_plan_its_rate_limits_sustain(sim, amazon) -> None:
    assert isinstance(amazon, Channel) and amazon.name == "amazon"
    assert amazon.poll_resources == ("orders", "listings")  # no FBA location configured
    assert amazon.poll_intervals() == {"orders": pytest.approx(1 / 0.0056), "listings": 3600.0}
    async with aiohttp.ClientSession() as session:
        settings = AmazonSettings(**sim.client_settings(fba_location="fba", orders_poll_seconds=600))
        with_fba = AmazonChannel(settings, session)
    assert with_fba.poll_intervals() == {"orders": 600.0, "listings": 3600.0, "fba_stock": 300.0}
    assert set(with_fba.poll_resources) == set(with_fba.poll_intervals())


async def test_quantity_patch_shows_only_after_the_consistency_delay(sim, amazon) -> None:
    await amazon.push(ListingRef("MUG"), Field.QUANTITY, "17")
    assert await quantity(amazon, "MUG") == 3  # ACCEPTED is not applied yet
    await asyncio.sleep(DELAY + 0.1)
    assert await quantity(amazon, "MUG") == 17
    # merge kept the seller's handling time beside the new quantity
    entry = sim.market.listings["MUG"].attributes["fulfillment_availability"][0]
    assert entry == {"fulfillment_channel_code": "DEFAULT", "quantity": 17, "lead_time_to_ship_max_days": 2}


async def test_product_type_is_read_once_and_sent_with_every_patch(sim, amazon) -> None:
    for qty in ("5", "6", "7"):
        await amazon.push(ListingRef("MUG"), Field.QUANTITY, qty)
    assert sim.market.counters.calls["getListingsItem"] == 1
    assert sim.market.counters.calls["patchListingsItem"] == 3


async def test_price_push_replaces_the_offer_price_in_the_marketplace_currency(sim, amazon) -> None:
    await amazon.push(ListingRef("MUG"), Field.PRICE, "12.5")
    await asyncio.sleep(DELAY + 0.1)
    [seen] = await amazon.read_listings([ListingRef("MUG")])
    assert seen.price == "12.50"
    offer = sim.market.listings["MUG"].attributes["purchasable_offer"][0]
    assert (offer["marketplace_id"], offer["currency"], offer["audience"]) == ("ATVPDKIKX0DER", "USD", "ALL")


async def test_pause_sets_quantity_zero_and_resume_leaves_it_to_the_quantity_push(sim, amazon) -> None:
    await amazon.push(ListingRef("MUG"), Field.STATUS, "paused")
    await asyncio.sleep(DELAY + 0.1)
    assert await quantity(amazon, "MUG") == 0
    assert sim.market.snapshot()["listings"]["MUG"]["status"] == ["DISCOVERABLE"]
    patches = sim.market.counters.calls["patchListingsItem"]
    await amazon.push(ListingRef("MUG"), Field.STATUS, "active")
    assert sim.market.counters.calls["patchListingsItem"] == patches
    await amazon.push(ListingRef("MUG"), Field.QUANTITY, "4")
    await asyncio.sleep(DELAY + 0.1)
    assert sim.market.snapshot()["listings"]["MUG"]["status"] == ["BUYABLE", "DISCOVERABLE"]


async def test_fba_listing_quantity_is_never_pushed(sim, amazon) -> None:
    with pytest.raises(Permanent, match="fulfilled by Amazon"):
        await amazon.push(ListingRef("KETTLE"), Field.QUANTITY, "5")
    assert sim.market.counters.calls["patchListingsItem"] == 0


async def test_unknown_sku_and_bad_values_are_permanent(sim, amazon) -> None:
    with pytest.raises(Permanent, match="404"):
        await amazon.push(ListingRef("NOPE"), Field.QUANTITY, "1")
    for field, value in (
        (Field.QUANTITY, "-1"),
        (Field.QUANTITY, "2.5"),
        (Field.PRICE, "0"),
        (Field.STATUS, "gone"),
    ):
        with pytest.raises(Permanent):
            await amazon.push(ListingRef("MUG"), field, value)
    [missing] = await amazon.read_listings([ListingRef("NOPE")])
    assert missing.quantity is None and missing.extra == {"missing": "true"}


async def test_invalid_submission_is_permanent_and_forgets_the_cached_listing(sim, amazon) -> None:
    await amazon.push(ListingRef("MUG"), Field.QUANTITY, "5")
    # The seller re-categorised the listing on Amazon: the cached product type is now wrong.
    sim.market.seed_listing({"sku": "MUG", "quantity": 5, "price": "9.90", "product_type": "TEAPOT"})
    with pytest.raises(Permanent, match="INVALID"):
        await amazon.push(ListingRef("MUG"), Field.QUANTITY, "6")
    await amazon.push(ListingRef("MUG"), Field.QUANTITY, "6")  # re-read, right type, accepted
    assert sim.market.counters.calls["getListingsItem"] == 2


async def test_listings_poll_observes_every_listing_once_per_change(sim, amazon) -> None:
    for n in range(25):
        sim.market.seed_listing({"sku": f"BULK-{n:02d}", "quantity": n, "price": "1.00"})
    first = await amazon.poll("listings", None)
    seen = {e.body.external_id: e.body for e in first.events if isinstance(e.body, ListingObservation)}
    assert len(seen) == 27 and seen["BULK-07"].quantity == 7 and seen["BULK-07"].price == Decimal("1.00")
    assert sim.market.counters.calls["searchListingsItems"] == 2  # 20 per page
    await amazon.push(ListingRef("MUG"), Field.QUANTITY, "8")
    await asyncio.sleep(DELAY + 0.1)
    again = await amazon.poll("listings", first.cursor)
    changed = {e.dedupe_key for e in again.events} - {e.dedupe_key for e in first.events}
    assert [key.split(":")[2] for key in changed] == ["MUG"]


async def test_outages_surface_as_transient(sim, amazon) -> None:
    await amazon.read_listings([ListingRef("MUG")])
    await sim.market.set_outage(OutageMode.ERROR)
    with pytest.raises(Transient, match="503"):
        await amazon.read_listings([ListingRef("MUG")])
    await sim.market.set_outage(OutageMode.REFUSE)
    with pytest.raises(Transient):
        await amazon.read_listings([ListingRef("MUG")])
    await sim.market.set_outage(OutageMode.UP)
    assert await quantity(amazon, "MUG") == 3


def test_simulator_patch_semantics_follow_amazons_rules() -> None:
    from syncd.sandbox import amazon_patch
    from syncd.sandbox.amazon_market import AmazonMarket

    market = AmazonMarket()
    listing = market.seed_listing({"sku": "S", "quantity": 1, "price": "2.00"})
    bad: list[dict[str, Any]] = [
        {"op": "move", "path": "/attributes/x", "value": [{}]},
        {"op": "replace", "path": "/attributes/fulfillment_availability/0/quantity", "value": [{}]},
        {"op": "merge", "path": "/attributes/fulfillment_availability", "value": [{"quantity": 3}]},
        {
            "op": "replace",
            "path": "/attributes/purchasable_offer",
            "value": [
                {
                    "marketplace_id": "M",
                    "currency": "USD",
                    "our_price": [{"schedule": [{"value_with_tax": -1}]}],
                }
            ],
        },
    ]
    assert len(amazon_patch.check(listing, "PRODUCT", bad)) == 4
    assert amazon_patch.check(None, "PRODUCT", bad[:1])[0]["code"] == "4000004"
    assert amazon_patch.check(listing, "OTHER", [])[0]["code"] == "4000005"
    amazon_patch.apply(listing, [{"op": "delete", "path": "/attributes/purchasable_offer"}])
    assert "purchasable_offer" not in listing.attributes
