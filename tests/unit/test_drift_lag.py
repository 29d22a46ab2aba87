"""churn_drift_psi (scorer.drift) and churn_consumer_lag (kafka_io.lag) without a broker."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from kafka_io.lag import LagReporter
from monitoring.metrics import ScorerMetrics
from scorer.drift import DriftMonitor, psi

TWO_BINS = {"reference_distribution": {"bins": [0.0, 0.5, 1.0], "fractions": [0.5, 0.5]}}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_psi_matches_a_hand_computed_value() -> None:
    # actual 3/4 below 0.5, reference 1/2: 0.25*ln(0.75/0.5) + (-0.25)*ln(0.25/0.5)
    assert psi(np.array([0.75, 0.25]), np.array([0.5, 0.5])) == pytest.approx(0.2746530721670274, abs=1e-12)
    assert psi(np.array([0.3, 0.7]), np.array([0.3, 0.7])) == 0.0


def test_psi_floors_empty_bins_at_epsilon() -> None:
    # reference bin 2 is empty -> 1e-4: (0.5-1)*ln(0.5/1) + (0.5-1e-4)*ln(0.5/1e-4)
    value = psi(np.array([0.5, 0.5]), np.array([1.0, 0.0]))
    assert value == pytest.approx(4.60431846666895, abs=1e-9)


def test_monitor_sets_the_gauge_from_the_window_against_the_manifest_reference() -> None:
    seen: list[float] = []
    clock = Clock()
    monitor = DriftMonitor(seen.append, window=4, interval_s=2.0, clock=clock)
    monitor.set_reference("v1", TWO_BINS)
    monitor.update([0.1, 0.2, 0.3, 0.9])
    assert seen == [pytest.approx(0.2746530721670274, abs=1e-12)]
    # Within the interval nothing is recomputed.
    monitor.update([0.9, 0.8])
    assert len(seen) == 1
    # The window keeps only the last 4: [0.3, 0.9, 0.9, 0.8] -> fractions [0.25, 0.75], same PSI.
    clock.now = 2.5
    monitor.update([])
    assert len(seen) == 1  # an empty batch does not recompute either
    monitor.update([0.8])  # window [0.9, 0.9, 0.8, 0.8] -> [0, 1]
    assert seen[-1] == pytest.approx(psi(np.array([0.0, 1.0]), np.array([0.5, 0.5])))


def test_monitor_wraps_the_ring_buffer_and_resets_on_a_new_model() -> None:
    monitor = DriftMonitor(lambda _v: None, window=5, interval_s=0.0)
    monitor.set_reference("v1", TWO_BINS)
    monitor.add([0.1] * 3)
    monitor.add([0.9] * 4)  # wraps: window holds 1 x 0.1 and 4 x 0.9
    assert monitor.fractions() == pytest.approx([0.2, 0.8])
    monitor.set_reference("v2", TWO_BINS)
    assert monitor.fractions() is None


def test_monitor_without_a_reference_never_sets_the_gauge() -> None:
    seen: list[float] = []
    monitor = DriftMonitor(seen.append, interval_s=0.0)
    monitor.set_reference("v1", {})
    monitor.update([0.5] * 10)
    assert seen == []


def test_lag_reporter_sets_series_and_removes_unassigned_partitions() -> None:
    metrics = ScorerMetrics.create(CollectorRegistry())
    clock = Clock()
    reporter = LagReporter(metrics.consumer_lag, interval_s=2.0, clock=clock)
    assert reporter.due()
    assert not reporter.due()
    clock.now = 2.0
    assert reporter.due()

    def series() -> dict[tuple[str, str], float]:
        samples = metrics.consumer_lag.collect()[0].samples
        return {(s.labels["topic"], s.labels["partition"]): s.value for s in samples}

    reporter.report({("events", 0): 10, ("events", 1): 0, ("events", 2): -3})
    assert series() == {("events", "0"): 10, ("events", "1"): 0, ("events", "2"): 0}
    reporter.report({("events", 1): 5})  # partitions 0 and 2 were revoked
    assert series() == {("events", "1"): 5}
    reporter.forget([("events", 1)])
    assert series() == {}
