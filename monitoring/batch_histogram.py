"""A Prometheus histogram fed a whole batch of observations at once.

``prometheus_client.Histogram.observe`` takes one value and a lock per call,
about 0.6 µs; the scorer observes two values per event (churn probability,
end-to-end latency), which at tens of thousands of events per second is a
visible share of its time. :class:`BatchHistogram` counts a batch with one
``numpy.searchsorted`` and exposes the same series as a label-less
``Histogram`` of that name (``_bucket`` with ``le``, ``_sum``, ``_count``), so
queries, alert rules and dashboards do not change.

The counts live in ``prometheus_client.values.ValueClass`` cells named exactly
as a ``Histogram``'s (``<name>_bucket`` with ``le``, ``<name>_sum``): in one
process they are plain locked floats; under ``PROMETHEUS_MULTIPROC_DIR``
(``churn api --workers N``) they are the client's memory-mapped per-process
files, which ``MultiProcessCollector`` adds up like any histogram's.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client import values as client_values
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString


class BatchHistogram:
    """A label-less histogram with cumulative ``le`` buckets, registered on ``registry``."""

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        bounds = [float(b) for b in buckets]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ValueError(f"{name}: buckets must be strictly increasing, got {buckets}")
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        self.name = name
        self.documentation = documentation
        self._bound_list = bounds
        self._bounds = np.array(bounds)
        self._labels: list[str] = [floatToGoString(b) for b in bounds]  # type: ignore[no-untyped-call]
        # per bucket, not cumulative, as a Histogram stores them
        self._counts = [
            client_values.ValueClass("histogram", name, f"{name}_bucket", ("le",), (label,), documentation)
            for label in self._labels
        ]
        self._sum = client_values.ValueClass("histogram", name, f"{name}_sum", (), (), documentation)
        registry.register(self)

    def observe_many(self, values: Iterable[float] | np.ndarray) -> None:
        """Count every value (NaN is ignored, as nothing can be compared with it)."""
        array = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64)
        array = array[~np.isnan(array)]
        if array.size == 0:
            return
        # The first bound >= value: the bucket ``le`` that a single observe would count first.
        counts = np.bincount(np.searchsorted(self._bounds, array, side="left"), minlength=len(self._bounds))
        for cell, count in zip(self._counts, counts.tolist(), strict=True):
            if count:
                cell.inc(count)
        self._sum.inc(float(array.sum()))

    def observe(self, value: float) -> None:
        """One value (the API's single predictions): a bisection, no array."""
        if math.isnan(value):
            return
        self._counts[bisect.bisect_left(self._bound_list, value)].inc(1)
        self._sum.inc(value)

    def _family(self, with_samples: bool) -> HistogramMetricFamily:
        if not with_samples:
            return HistogramMetricFamily(self.name, self.documentation)
        cumulative = list(itertools.accumulate(cell.get() for cell in self._counts))
        buckets = list(zip(self._labels, cumulative, strict=True))
        return HistogramMetricFamily(
            self.name, self.documentation, buckets=buckets, sum_value=self._sum.get()
        )

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield self._family(with_samples=False)

    def collect(self) -> Iterator[HistogramMetricFamily]:
        yield self._family(with_samples=True)
