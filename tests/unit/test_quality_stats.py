"""Live quality figures agree with scikit-learn on random windows; edge cases give None, not garbage."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, precision_score, recall_score, roc_auc_score

from scorer.quality_stats import CALIBRATION_BUCKETS, window_quality


@pytest.mark.parametrize("seed", range(8))
def test_figures_match_sklearn_on_random_windows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 6000))
    p = rng.random(n)
    if seed % 2:
        p = np.round(p, 2)  # ties, as a coarse model gives
    y = (rng.random(n) < p * rng.uniform(0.3, 1.0)).astype(int)
    threshold = float(rng.uniform(0.2, 0.7))

    q = window_quality(p, y, threshold)

    flagged = (p >= threshold).astype(int)
    assert q.labelled == n and q.positives == int(y.sum())
    assert q.roc_auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert q.precision == pytest.approx(precision_score(y, flagged), abs=1e-12)
    assert q.recall == pytest.approx(recall_score(y, flagged), abs=1e-12)
    assert q.brier == pytest.approx(brier_score_loss(y, p), abs=1e-12)


def test_calibration_buckets_follow_the_probability_histogram_bounds() -> None:
    rng = np.random.default_rng(3)
    p = np.concatenate([rng.random(3000), [0.0, 0.1, 0.1000001, 1.0]])
    y = (rng.random(p.size) < p).astype(int)
    buckets = window_quality(p, y, 0.5).calibration
    assert [b.upper for b in buckets] == list(CALIBRATION_BUCKETS)
    assert sum(b.count for b in buckets) == p.size
    lower = 0.0
    for bucket in buckets:
        inside = (
            (p > lower) & (p <= bucket.upper) if lower else p <= bucket.upper
        )  # (lower, upper], 0 in the first
        assert bucket.count == int(inside.sum())
        assert bucket.mean_predicted == pytest.approx(p[inside].mean())
        assert bucket.observed_rate == pytest.approx(y[inside].mean())
        lower = bucket.upper


def test_per_prediction_thresholds() -> None:
    p = np.array([0.3, 0.3, 0.6, 0.6])
    y = np.array([1, 0, 1, 0])
    q = window_quality(p, y, np.array([0.2, 0.5, 0.5, 0.7]))  # flagged: yes, no, yes, no
    assert (q.precision, q.recall) == (1.0, 1.0)


def test_figures_a_window_cannot_support_are_none() -> None:
    empty = window_quality(np.array([]), np.array([]), 0.5)
    assert (empty.labelled, empty.roc_auc, empty.brier, empty.calibration) == (0, None, None, ())
    one_class = window_quality(np.array([0.2, 0.7]), np.array([0, 0]), 0.5)
    assert one_class.roc_auc is None and one_class.recall is None
    assert one_class.precision == 0.0 and one_class.brier == pytest.approx((0.04 + 0.49) / 2)
    nothing_flagged = window_quality(np.array([0.2, 0.3]), np.array([0, 1]), 0.5)
    assert (
        nothing_flagged.precision is None and nothing_flagged.recall == 0.0 and nothing_flagged.roc_auc == 1.0
    )
    with pytest.raises(ValueError, match="one length"):
        window_quality(np.array([0.1, 0.2]), np.array([1]), 0.5)
