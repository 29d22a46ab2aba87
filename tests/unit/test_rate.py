from __future__ import annotations

import pytest

from producer.rate import TokenBucket


class _FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_token_bucket_holds_a_steady_rate() -> None:
    fake = _FakeTime()
    bucket = TokenBucket(1000, burst=1, clock=fake.clock, sleep=fake.sleep)
    for _ in range(5001):
        bucket.take()
    assert fake.now == pytest.approx(5.0, rel=0.01)


def test_burst_is_bounded_after_idle_time() -> None:
    fake = _FakeTime()
    bucket = TokenBucket(100, burst=10, clock=fake.clock, sleep=fake.sleep)
    fake.now = 60.0  # a minute idle saves at most `burst` tokens
    for _ in range(10):
        bucket.take()
    assert fake.now == 60.0
    bucket.take()
    assert fake.now > 60.0


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0)
