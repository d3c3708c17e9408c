"""Retry timing for failed pushes, as a pure function."""

from __future__ import annotations


def retry_delay(
    attempts: int, base: float, cap: float, jitter: float, retry_after: float | None = None
) -> float:
    """`min(cap, base·2^attempts)·jitter`, or the server's Retry-After if that is later.

    `jitter` is a draw from [0.5, 1]; passing it in keeps this function deterministic.
    """
    if not 0.5 <= jitter <= 1.0:
        raise ValueError("jitter must lie in [0.5, 1]")
    # Cap the exponent so huge attempt counts cannot overflow a float.
    exp = min(attempts, 62)
    delay = min(cap, base * (2.0**exp)) * jitter
    if retry_after is not None and retry_after > delay:
        return retry_after
    return delay
