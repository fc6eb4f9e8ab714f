"""rtclab.ratelimit: bursts pass, floods do not, memory stays bounded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtclab.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_flood_is_refused() -> None:
    limiter = RateLimiter(burst=5, per_second=1, clock=FakeClock())
    assert [limiter.allow("ana") for _ in range(7)] == [True] * 5 + [False] * 2


def test_tokens_come_back_at_the_sustained_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(burst=2, per_second=4, clock=clock)
    assert limiter.allow("ana") and limiter.allow("ana") and not limiter.allow("ana")
    clock.now += 0.25  # one token at 4 per second
    assert limiter.allow("ana")
    assert not limiter.allow("ana")


def test_keys_do_not_share_a_bucket() -> None:
    limiter = RateLimiter(burst=1, per_second=0.1, clock=FakeClock())
    assert limiter.allow("ana") and not limiter.allow("ana")
    assert limiter.allow("ben")


def test_refill_never_exceeds_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(burst=3, per_second=100, clock=clock)
    limiter.allow("ana")
    clock.now += 3600
    assert sum(limiter.allow("ana") for _ in range(10)) == 3


def test_many_one_off_keys_are_forgotten() -> None:
    clock = FakeClock()
    limiter = RateLimiter(burst=2, per_second=10, max_keys=100, clock=clock)
    for i in range(1000):
        clock.now += 0.2  # every earlier key has refilled by the next request
        limiter.allow(f"addr:{i}")
    assert len(limiter) <= 101


def test_busy_keys_are_remembered_when_others_are_forgotten() -> None:
    clock = FakeClock()
    limiter = RateLimiter(burst=1, per_second=0.001, max_keys=10, clock=clock)
    assert limiter.allow("flooder")
    for i in range(50):
        limiter.allow(f"addr:{i}")
    assert not limiter.allow("flooder")  # still empty: forgetting it would have reset the flood


@pytest.mark.parametrize(("burst", "rate"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_bad_settings_are_refused(burst: int, rate: float) -> None:
    with pytest.raises(ValueError):
        RateLimiter(burst, rate)


@given(st.lists(st.floats(min_value=0, max_value=2), max_size=200), st.integers(1, 10), st.floats(0.1, 50))
def test_never_more_than_burst_plus_rate_times_time(gaps: list[float], burst: int, rate: float) -> None:
    clock = FakeClock()
    limiter = RateLimiter(burst, rate, clock=clock)
    allowed = 0
    for gap in gaps:
        clock.now += gap
        allowed += limiter.allow("ana")
    assert allowed <= burst + rate * clock.now + 1e-9
