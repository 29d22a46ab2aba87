"""A token bucket: a steady send rate with a small burst allowance."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; :meth:`take` blocks until one is free."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 100)  # ~10 ms worth
        self._clock = clock
        self._sleep = sleep
        self._tokens = 1.0
        self._last = clock()

    def take(self, n: float = 1.0) -> None:
        while True:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= n - 1e-9:  # float rounding must not cost an extra sleep
                self._tokens -= n
                return
            self._sleep(max((n - self._tokens) / self.rate, 0.0005))
