"""Per-client limits of the API, on the ``limits`` library: the request rate, and failed key checks.

One :class:`RateLimit` and one :class:`FailureThrottle` per worker process, in
memory, with a fixed window (the cheapest strategy: one dict update per
request). The rate limit tells clients apart by the name of their API key
(``by="key"``) or by their address; the throttle counts wrong or missing keys
per address. Addresses are the peer's, or the client's named by a trusted
proxy (``CHURN_API_TRUSTED_PROXIES``); see docs/api.md for the multi-worker caveat.
"""

from __future__ import annotations

import math
import time
from typing import Literal

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

RateLimitBy = Literal["address", "key"]


def address(client: tuple[str, int] | None) -> str:
    return client[0] if client else "unknown"


class RateLimit:
    def __init__(self, spec: str, by: RateLimitBy = "address") -> None:
        self.spec = spec
        self.by = by
        self.item = parse(spec)  # "100/second", "6000/minute", "10 per 1 second"
        self._limiter = FixedWindowRateLimiter(MemoryStorage())

    def identity(self, key_name: str | None, client: tuple[str, int] | None) -> str:
        """Who is counted: the API key's name (``by="key"`` and a valid key sent), else the address."""
        if self.by == "key" and key_name is not None:
            return "key:" + key_name
        return "addr:" + address(client)

    def retry_after(self, identity: str) -> int | None:
        """Count one request; None when admitted, else whole seconds until the window resets."""
        if self._limiter.hit(self.item, identity):
            return None
        return _seconds_left(self._limiter, self.item, identity)


class FailureThrottle:
    """Wrong or missing API keys per address; over ``spec``, every guarded request of it is refused."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.item = parse(spec)
        self._limiter = FixedWindowRateLimiter(MemoryStorage())

    def retry_after(self, address: str) -> int | None:
        """None while ``address`` is under the limit, else whole seconds until its window resets."""
        if self._limiter.test(self.item, address):
            return None
        return _seconds_left(self._limiter, self.item, address)

    def failed(self, address: str) -> None:
        self._limiter.hit(self.item, address)


def _seconds_left(limiter: FixedWindowRateLimiter, item: object, identity: str) -> int:
    reset_at, _remaining = limiter.get_window_stats(item, identity)  # type: ignore[arg-type]
    return max(1, math.ceil(reset_at - time.time()))
