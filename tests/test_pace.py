"""Polling pace: a backstop that polls less while push flows and more once it goes quiet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from syncd.capture.pace import Pace

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_push_resources_poll_less_while_push_is_healthy_and_more_once_it_is_quiet() -> None:
    pace = Pace(base=60, pushed=True)
    assert pace.interval(NOW, NOW - timedelta(seconds=30)) == 120  # a delivery half a minute ago
    assert pace.interval(NOW, NOW - timedelta(minutes=10)) == 30  # quiet for ten minutes
    assert pace.interval(NOW, None) == 30  # never heard a push: poll more
    assert pace.tick == 30


def test_resources_without_push_keep_their_interval() -> None:
    pace = Pace(base=300, pushed=False)
    assert pace.interval(NOW, NOW) == 300 == pace.tick


def test_a_relaxed_pace_never_waits_past_half_the_lag_threshold() -> None:
    pace = Pace(base=120, pushed=True, ceiling=150)
    assert pace.interval(NOW, NOW) == 150
    assert Pace(base=120, pushed=True, ceiling=60).interval(NOW, NOW) == 120  # never below the base
