"""The model-failure breaker: stop consuming when the model fails on most records, probe until it recovers.

A model that fails on a few records has those records dead-lettered
(``scoring_failed``) and the stream goes on. A model that fails on most of them —
a broken promotion, a feature it cannot handle any more — would turn the whole
stream into dead letters. :class:`ScoringBreaker` counts, over the last
``window`` valid records (whole batches: the oldest batch leaves once the rest
still fill the window), how many the model failed on. When that share exceeds
``threshold`` (and the window holds at least a tenth of ``window`` records, so
that the first few records of a run do not decide), the breaker opens: the engine
holds the batch that opened it, pauses consuming and reports not-ready.

While open, a probe is due every ``probe_interval_s`` and as soon as another model
version serves: the engine scores the held batch again. If the share of failures
in it is at most ``threshold``, the breaker closes (its window starts afresh) and
the engine delivers that batch and resumes; else it waits for the next probe.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class ScoringBreaker:
    """Counts model failures over a window of records; open = consuming paused. Not thread-safe."""

    def __init__(
        self,
        window: int,
        threshold: float,
        probe_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.threshold = threshold
        self.probe_interval_s = probe_interval_s
        self.min_records = max(1, window // 10)
        self._clock = clock
        self._batches: deque[tuple[int, int]] = deque()  # (valid, failed) per batch, oldest first
        self.valid = 0
        self.failed = 0
        self.open = False
        self.probes = 0
        self._next_probe = 0.0
        self._version = ""

    @property
    def share(self) -> float:
        """The share of valid records in the window that the model failed on."""
        return self.failed / self.valid if self.valid else 0.0

    def record(self, valid: int, failed: int, version: str) -> bool:
        """Count one scored batch (``version`` scored it); whether the breaker is open afterwards.

        While open, the batch is a probe: the breaker closes if the model failed on at most
        ``threshold`` of its valid records.
        """
        if self.open:
            self.probes += 1
            if valid and failed <= self.threshold * valid:
                self.open = False
                self._batches.clear()
                self.valid = self.failed = 0
            else:
                self._next_probe = self._clock() + self.probe_interval_s
                self._version = version
                return True
        if not valid:
            return False
        self._batches.append((valid, failed))
        self.valid += valid
        self.failed += failed
        while self._batches and self.valid - self._batches[0][0] >= self.window:
            old_valid, old_failed = self._batches.popleft()
            self.valid -= old_valid
            self.failed -= old_failed
        if self.valid >= self.min_records and self.failed > self.threshold * self.valid:
            self.open = True
            self._next_probe = self._clock() + self.probe_interval_s
            self._version = version
        return self.open

    def probe_due(self, version: str) -> bool:
        """Whether to score the held batch again: the interval passed or another model serves."""
        return self.open and (version != self._version or self._clock() >= self._next_probe)

    def seconds_to_probe(self) -> float:
        return max(0.0, self._next_probe - self._clock())
