"""Property tests of the pure rules: available, kits, listing targets, count acceptance, backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from syncd.domain.available import kit_available, listing_target, real_available
from syncd.domain.counts import AcceptedCount, CountVerdict, judge_count, rebased_on_hand
from syncd.domain.models import ListingRule, StockFigures
from syncd.push.backoff import retry_delay

small = st.integers(min_value=0, max_value=10_000)
T0 = datetime(2026, 12, 1, tzinfo=UTC)


@given(small, small, small, small)
def test_available_is_never_negative_and_oversold_iff_promises_exceed_stock(on_hand, committed, reserved, buffer):
    a = real_available(StockFigures(on_hand, committed, reserved, buffer))
    assert a.available >= 0
    assert a.available <= max(0, on_hand - committed - reserved)
    assert a.oversold == (committed + reserved > on_hand)
    if not a.oversold:
        assert a.available == max(0, on_hand - committed - reserved - buffer)


@given(small, small, small, small, st.integers(min_value=1, max_value=100))
def test_selling_one_unit_never_raises_available(on_hand, committed, reserved, buffer, qty):
    before = real_available(StockFigures(on_hand, committed, reserved, buffer))
    after = real_available(StockFigures(on_hand, committed + qty, reserved, buffer))
    assert after.available <= before.available


@given(st.lists(st.tuples(st.integers(-50, 1000), st.integers(1, 10)), min_size=1, max_size=6))
def test_kit_available_is_the_scarcest_component(components):
    k = kit_available(components)
    assert k >= 0
    for available, qty in components:
        assert k * qty <= max(0, available)
    assert any((k + 1) * qty > max(0, available) for available, qty in components)


def test_kit_without_components_cannot_sell():
    assert kit_available([]) == 0


@given(small, st.floats(0, 1), st.none() | small, st.booleans(), st.booleans())
def test_listing_target_respects_share_cap_pause_and_oversell(available, share, cap, paused, oversold):
    t = listing_target(available, ListingRule(share=share, cap=cap, paused=paused), oversold)
    assert 0 <= t <= available
    if cap is not None:
        assert t <= cap
    if paused or oversold:
        assert t == 0
    if share == 1.0 and cap is None and not paused and not oversold:
        assert t == available


sources = ["threepl", "amazon", "manual"]
minutes = st.integers(0, 600)


@given(st.sampled_from(sources), minutes,
       st.lists(st.tuples(st.sampled_from(sources), minutes), max_size=3, unique_by=lambda x: x[0]))
def test_count_is_accepted_only_when_newer_than_equal_or_higher_priority(source, at, history):
    window = timedelta(minutes=60)
    prior = [AcceptedCount(s, T0 + timedelta(minutes=m)) for s, m in history]
    verdict = judge_count(source, T0 + timedelta(minutes=at), sources, prior, window)
    rank = sources.index(source)
    newer_than_peers = all(at > m for s, m in history if sources.index(s) <= rank)
    outranked = any(sources.index(s) < rank and 0 <= at - m < 60 for s, m in history)
    assert (verdict is CountVerdict.ACCEPTED) == (newer_than_peers and not outranked)


def test_count_from_a_source_that_may_not_count_the_location_is_refused():
    assert judge_count("amazon", T0, ["threepl"], [], timedelta(0)) is CountVerdict.UNKNOWN_SOURCE


@given(small, st.lists(st.integers(-20, 20), max_size=10))
def test_rebase_keeps_movements_the_count_did_not_see(count, movements):
    assert rebased_on_hand(count, movements) == count + sum(movements)


@given(st.integers(0, 100), st.floats(0.01, 10), st.floats(1, 1000), st.floats(0.5, 1), st.none() | st.floats(0, 5000))
def test_backoff_is_capped_jittered_and_never_earlier_than_retry_after(attempts, base, cap, jitter, retry_after):
    d = retry_delay(attempts, base, cap, jitter, retry_after)
    assert d >= 0
    if retry_after is not None:
        assert d >= retry_after
    else:
        assert d <= cap
        assert d >= min(cap, base * 2 ** min(attempts, 62)) * 0.5 - 1e-9


def test_channel_is_lagging_while_a_listing_has_not_matched_its_target_past_the_threshold():
    from syncd.domain.status import ChannelFacts, judge_channel

    now = T0 + timedelta(hours=1)
    facts = ChannelFacts(last_success=now, started_at=T0, consecutive_failures=0, oldest_pending=None,
                         lag_threshold_seconds=300, down_after_failures=5,
                         unmatched_since=now - timedelta(seconds=400))
    verdict = judge_channel(facts, now)
    assert verdict.state.value == "lagging" and verdict.unmatched_seconds == 400
    fresh = judge_channel(ChannelFacts(now, T0, 0, None, 300, 5, now - timedelta(seconds=10)), now)
    assert fresh.state.value == "ok"
