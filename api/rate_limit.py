"""Per-client request rate limit for the API, on the ``limits`` library.

One :class:`RateLimit` per worker process, in memory, with a fixed window
(the cheapest strategy: one dict update per request). Clients are told apart by
their API key (hashed, never stored in clear) or by their address; see
docs/api.md for the multi-worker and reverse-proxy caveats.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Literal

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

RateLimitBy = Literal["address", "key"]


class RateLimit:
    def __init__(self, spec: str, by: RateLimitBy = "address") -> None:
        self.spec = spec
        self.by = by
        self.item = parse(spec)  # "100/second", "6000/minute", "10 per 1 second"
        self._limiter = FixedWindowRateLimiter(MemoryStorage())
        self._key_ids: dict[bytes, str] = {}

    def identity(self, key: bytes | None, client: tuple[str, int] | None) -> str:
        """Who is counted: the API key's digest (``by="key"`` and a key sent), else the address."""
        if self.by == "key" and key is not None:
            known = self._key_ids.get(key)
            if known is None:
                known = "key:" + hashlib.sha256(key).hexdigest()[:24]
                if len(self._key_ids) < 10_000:  # bounded: random keys cannot grow it forever
                    self._key_ids[key] = known
            return known
        return "addr:" + (client[0] if client else "unknown")

    def retry_after(self, identity: str) -> int | None:
        """Count one request; None when admitted, else whole seconds until the window resets."""
        if self._limiter.hit(self.item, identity):
            return None
        reset_at, _remaining = self._limiter.get_window_stats(self.item, identity)
        return max(1, math.ceil(reset_at - time.time()))
