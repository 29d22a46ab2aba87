"""Model quality over a window of labelled predictions: ROC AUC, precision, recall, Brier, calibration.

One pure function, :func:`window_quality`, over the probabilities, the observed
labels and the model's threshold; ``churn quality`` calls it for each model version
every few seconds. ROC AUC is exact (scikit-learn's ``roc_auc_score``, ties
counted half): on the default window of 5,000 pairs it costs about a millisecond,
so no approximation is needed. A prediction is a churn call when its probability
is at or above the threshold, the rule the scorer's ``churn`` field follows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from monitoring.metrics import PROBABILITY_BUCKETS

#: Upper bounds of the calibration buckets (as the probability histogram's ``le``): (0, 0.1], ..., (0.9, 1].
CALIBRATION_BUCKETS = PROBABILITY_BUCKETS
#: The ``bucket`` label of each calibration bucket, as exported: "0.1" ... "1.0".
BUCKET_LABELS = tuple(f"{upper:.1f}" for upper in CALIBRATION_BUCKETS)


@dataclass(frozen=True)
class CalibrationBucket:
    """Labelled predictions whose probability is at most ``upper`` (and above the previous bound)."""

    upper: float
    count: int
    mean_predicted: float
    observed_rate: float

    @property
    def label(self) -> str:
        return f"{self.upper:.1f}"


@dataclass(frozen=True)
class WindowQuality:
    """Quality of one model version over its window; a figure that needs what the window lacks is None."""

    labelled: int
    positives: int
    roc_auc: float | None  # both classes needed
    precision: float | None  # at least one churn call needed
    recall: float | None  # at least one churned customer needed
    brier: float | None  # at least one pair needed
    calibration: tuple[CalibrationBucket, ...]


def window_quality(
    probabilities: np.ndarray, labels: np.ndarray, threshold: float | np.ndarray
) -> WindowQuality:
    """The quality figures of predictions ``probabilities`` whose outcomes are ``labels`` (0/1).

    ``threshold`` is the model's, or one per prediction (a window may span a re-threshold).
    """
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if p.shape != y.shape or p.ndim != 1:
        raise ValueError(f"probabilities {p.shape} and labels {y.shape} must be two vectors of one length")
    n = int(p.size)
    positives = int(y.sum())
    if n == 0:
        return WindowQuality(0, 0, None, None, None, None, ())
    flagged = p >= threshold
    true_positives = int(np.count_nonzero(flagged & (y == 1)))
    called = int(np.count_nonzero(flagged))
    roc_auc = float(roc_auc_score(y, p)) if 0 < positives < n else None
    return WindowQuality(
        labelled=n,
        positives=positives,
        roc_auc=roc_auc,
        precision=true_positives / called if called else None,
        recall=true_positives / positives if positives else None,
        brier=float(np.mean((p - y) ** 2)),
        calibration=calibration(p, y),
    )


def calibration(probabilities: np.ndarray, labels: np.ndarray) -> tuple[CalibrationBucket, ...]:
    """Mean predicted probability and observed churn rate per bucket; empty buckets are left out."""
    index = np.searchsorted(np.asarray(CALIBRATION_BUCKETS), probabilities, side="left")
    index = np.minimum(index, len(CALIBRATION_BUCKETS) - 1)
    counts = np.bincount(index, minlength=len(CALIBRATION_BUCKETS))
    predicted = np.bincount(index, weights=probabilities, minlength=len(CALIBRATION_BUCKETS))
    observed = np.bincount(index, weights=labels.astype(np.float64), minlength=len(CALIBRATION_BUCKETS))
    return tuple(
        CalibrationBucket(upper, int(count), float(predicted[i] / count), float(observed[i] / count))
        for i, (upper, count) in enumerate(zip(CALIBRATION_BUCKETS, counts, strict=True))
        if count
    )
