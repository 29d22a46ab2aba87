"""Prediction drift: the population stability index of recent predictions.

``PSI = sum_i (a_i - r_i) * ln(a_i / r_i)`` over the bins of the model
manifest's ``reference_distribution`` (``r``: the fractions of the test-set
predictions at training time; ``a``: the fractions of the last ``window``
predicted probabilities). Empty bins on either side count as ``epsilon`` so
the index stays finite. Rule of thumb: < 0.1 stable, 0.1-0.25 watch, > 0.25 shifted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

EPSILON = 1e-4


def psi(actual: np.ndarray, reference: np.ndarray, epsilon: float = EPSILON) -> float:
    """PSI of two fraction vectors over the same bins (each is floored at ``epsilon``)."""
    a = np.maximum(np.asarray(actual, dtype=np.float64), epsilon)
    r = np.maximum(np.asarray(reference, dtype=np.float64), epsilon)
    return float(np.sum((a - r) * np.log(a / r)))


class DriftMonitor:
    """A ring buffer of the last ``window`` probabilities and the PSI against a reference.

    :meth:`update` is called once per scored batch; the gauge is recomputed at
    most every ``interval_s`` seconds (a histogram of 5,000 floats is ~50 µs).
    """

    def __init__(
        self,
        set_gauge: Callable[[float], None],
        window: int = 5000,
        interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.set_gauge = set_gauge
        self.window = window
        self.interval_s = interval_s
        self.clock = clock
        self._buffer = np.zeros(window, dtype=np.float64)
        self._filled = 0
        self._next = 0
        self._edges: np.ndarray | None = None
        self._reference: np.ndarray | None = None
        self._reference_of: str | None = None
        self._last = -float("inf")

    def set_reference(self, version: str, manifest: dict[str, Any]) -> None:
        """Use ``manifest["reference_distribution"]`` of model ``version`` (no-op if unchanged)."""
        if version == self._reference_of:
            return
        self._reference_of = version
        reference = manifest.get("reference_distribution") or {}
        bins, fractions = reference.get("bins"), reference.get("fractions")
        if not bins or not fractions or len(bins) != len(fractions) + 1:
            log.warning("model %s has no usable reference_distribution; churn_drift_psi not set", version)
            self._edges = self._reference = None
            return
        self._edges = np.asarray(bins, dtype=np.float64)
        self._reference = np.asarray(fractions, dtype=np.float64)
        # A new model: predictions of the old one say nothing about it.
        self._filled = self._next = 0
        self._last = -float("inf")

    def add(self, probabilities: Sequence[float] | np.ndarray) -> None:
        values = np.asarray(probabilities, dtype=np.float64)[-self.window :]
        n = len(values)
        if n == 0:
            return
        end = self._next + n
        if end <= self.window:
            self._buffer[self._next : end] = values
        else:
            split = self.window - self._next
            self._buffer[self._next :] = values[:split]
            self._buffer[: n - split] = values[split:]
        self._next = end % self.window
        self._filled = min(self.window, self._filled + n)

    def fractions(self) -> np.ndarray | None:
        if self._edges is None or self._filled == 0:
            return None
        values = np.clip(self._buffer[: self._filled], self._edges[0], self._edges[-1])
        counts, _ = np.histogram(values, bins=self._edges)
        return counts / self._filled

    def value(self) -> float | None:
        actual = self.fractions()
        if actual is None or self._reference is None:
            return None
        return psi(actual, self._reference)

    def update(self, probabilities: Sequence[float] | np.ndarray) -> None:
        """Add a batch's probabilities; refresh the gauge if ``interval_s`` has passed."""
        if len(probabilities) == 0:
            return
        self.add(probabilities)
        now = self.clock()
        if now - self._last < self.interval_s:
            return
        value = self.value()
        if value is not None:
            self._last = now
            self.set_gauge(value)
