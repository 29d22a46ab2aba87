"""BatchHistogram exposes the same series as prometheus_client's Histogram fed one value at a time."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from monitoring.batch_histogram import BatchHistogram
from monitoring.metrics import E2E_BUCKETS, PROBABILITY_BUCKETS


def _series(registry: CollectorRegistry) -> dict[str, float]:
    """name{labels} -> value, without the _created sample that only the client Histogram has."""
    out = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


@pytest.mark.parametrize("buckets", [PROBABILITY_BUCKETS, E2E_BUCKETS])
def test_same_buckets_sum_and_count_as_the_client_histogram(buckets: tuple[float, ...]) -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.random(1000) * buckets[-1] * 1.2, np.array(buckets), [0.0, -1.0]])
    reference, batch = CollectorRegistry(), CollectorRegistry()
    client = Histogram("h", "doc", buckets=buckets, registry=reference)
    ours = BatchHistogram("h", "doc", buckets=buckets, registry=batch)
    for v in values:
        client.observe(float(v))
    ours.observe_many(values[:500])
    for v in values[500:700]:
        ours.observe(float(v))
    ours.observe_many(values[700:].tolist())

    expected, got = _series(reference), _series(batch)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key


def test_exposition_text_has_the_histogram_type_and_inf_bucket() -> None:
    registry = CollectorRegistry()
    histogram = BatchHistogram("churn_x", "A histogram.", buckets=(0.5, 1.0), registry=registry)
    histogram.observe_many([0.2, 0.7, 3])
    text = generate_latest(registry).decode()
    assert "# TYPE churn_x histogram" in text
    assert 'churn_x_bucket{le="0.5"} 1.0' in text
    assert 'churn_x_bucket{le="+Inf"} 3.0' in text
    assert "churn_x_count 3.0" in text


def test_nan_is_not_counted_and_bad_buckets_are_refused() -> None:
    registry = CollectorRegistry()
    histogram = BatchHistogram("h", "doc", buckets=(1.0,), registry=registry)
    histogram.observe_many([float("nan"), 0.5])
    histogram.observe(float("nan"))
    assert registry.get_sample_value("h_count") == 1
    with pytest.raises(ValueError, match="increasing"):
        BatchHistogram("g", "doc", buckets=(2.0, 1.0), registry=CollectorRegistry())
