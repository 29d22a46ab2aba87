"""The paired bootstrap comparison and the promotion gate, against known cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from training.comparison import (
    Comparison,
    NotComparableError,
    _ranks,
    _weighted_auc,
    compare_paired,
    gate,
)


def _customers(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    labels = (signal + rng.normal(size=n) > 0.5).astype(int)
    return labels, signal


def _model(signal: np.ndarray, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 1 / (1 + np.exp(-(signal + rng.normal(scale=noise, size=signal.size))))


def test_weighted_auc_equals_sklearn_on_a_resample_with_ties() -> None:
    labels, signal = _customers(300)
    scores = np.round(_model(signal, 1.0, 2), 2)  # rounded: many ties
    rng = np.random.default_rng(5)
    rows = rng.integers(0, 300, 300)
    weights = np.bincount(rows, minlength=300).astype(float)[None, :]
    expected = roc_auc_score(labels[rows], scores[rows])
    assert _weighted_auc(_ranks(scores), labels, weights)[0] == pytest.approx(expected, abs=1e-12)
    unit = np.ones((1, 300))
    assert _weighted_auc(_ranks(scores), labels, unit)[0] == pytest.approx(roc_auc_score(labels, scores))


def test_the_same_model_twice_differs_by_exactly_zero() -> None:
    labels, signal = _customers(500)
    p = _model(signal, 1.0, 3)
    c = compare_paired(labels, p, p, n_boot=200)
    assert c.difference == 0 and c.ci_low == 0 and c.ci_high == 0
    assert c.brier_a == c.brier_b


def test_a_clearly_better_challenger_has_an_interval_above_zero() -> None:
    labels, signal = _customers(3000)
    champion, challenger = _model(signal, 2.0, 3), _model(signal, 0.3, 4)
    c = compare_paired(labels, champion, challenger, n_boot=500, seed=1)
    assert c.roc_auc_b > c.roc_auc_a
    assert c.difference == pytest.approx(roc_auc_score(labels, challenger) - roc_auc_score(labels, champion))
    assert 0 < c.ci_low < c.difference < c.ci_high
    assert c.brier_b < c.brier_a
    assert gate(c, min_gain=0.01, min_pairs=1000).promote
    worse = compare_paired(labels, challenger, champion, n_boot=500, seed=1)
    assert worse.ci_high < 0
    decision = gate(worse, min_gain=0.0, min_pairs=100)
    assert not decision.promote and "below the gate" in decision.reason


def test_the_interval_covers_the_truth_for_equal_models() -> None:
    """Two models of equal skill (independent noise): the interval includes 0 in most trials."""
    covered = 0
    for trial in range(20):
        labels, signal = _customers(400, seed=100 + trial)
        c = compare_paired(labels, _model(signal, 1.0, trial), _model(signal, 1.0, 50 + trial), n_boot=300)
        covered += c.ci_low <= 0 <= c.ci_high
    assert covered >= 16  # 95 % nominal; 16 of 20 allows for the bootstrap's small-sample optimism


def test_gate_needs_enough_pairs_and_an_interval_clear_of_zero() -> None:
    base = dict(positives=50, roc_auc_a=0.8, roc_auc_b=0.83, confidence=0.95, n_boot=100)
    c = Comparison(n=200, difference=0.03, ci_low=-0.01, ci_high=0.07, brier_a=0.1, brier_b=0.1, **base)  # type: ignore[arg-type]
    assert not gate(c, min_gain=0.01, min_pairs=100).promote
    assert "includes 0" in gate(c, min_gain=0.01, min_pairs=100).reason
    assert "fewer than" in gate(c, min_gain=0.01, min_pairs=500).reason
    ok = Comparison(n=200, difference=0.03, ci_low=0.005, ci_high=0.07, brier_a=0.1, brier_b=0.1, **base)  # type: ignore[arg-type]
    assert gate(ok, min_gain=0.01, min_pairs=100).promote
    assert not gate(ok, min_gain=0.05, min_pairs=100).promote


def test_one_class_is_not_comparable() -> None:
    with pytest.raises(NotComparableError):
        compare_paired(np.zeros(10), np.linspace(0, 1, 10), np.linspace(0, 1, 10))
