"""Cross-validation, threshold choice and held-out metrics for one candidate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from models.calibration import model_score

PROBABILITY_BINS = np.linspace(0.0, 1.0, 11)


def standard_error(scores: Sequence[float]) -> float:
    """Standard error of the mean of fold scores: sample standard deviation / sqrt(folds)."""
    if len(scores) < 2:
        return 0.0
    return float(np.std(scores, ddof=1) / np.sqrt(len(scores)))


@dataclass
class CandidateResult:
    """A fitted candidate with its cross-validated and held-out figures."""

    name: str
    pipeline: Pipeline
    threshold: float
    cv_roc_auc: list[float]
    test_probability: np.ndarray
    metrics: dict[str, float] = field(default_factory=dict)
    #: Out-of-fold scores on the training split (log-odds where the model has them), for calibration.
    oof_score: np.ndarray = field(default_factory=lambda: np.empty(0))

    def summary(self) -> dict[str, float]:
        return {
            **self.metrics,
            "cv_roc_auc_mean": float(np.mean(self.cv_roc_auc)),
            "cv_roc_auc_std": float(np.std(self.cv_roc_auc)),
            "cv_roc_auc_se": standard_error(self.cv_roc_auc),
            "threshold": self.threshold,
        }


@dataclass(frozen=True)
class OutOfFold:
    """Cross-validation on the training split: per-fold ROC AUC and out-of-fold predictions."""

    roc_auc: list[float]
    probability: np.ndarray
    score: np.ndarray  # log-odds where the model has a decision_function, else the probability


def cross_validate(pipeline: Pipeline, x: pd.DataFrame, y: np.ndarray, *, folds: int, seed: int) -> OutOfFold:
    """Per-fold ROC AUC and out-of-fold probabilities and scores on the training split."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    probability = np.zeros(len(y), dtype=np.float64)
    score = np.zeros(len(y), dtype=np.float64)
    scores: list[float] = []
    for train_idx, val_idx in splitter.split(x, y):
        model = clone(pipeline).fit(x.iloc[train_idx], y[train_idx])
        held = x.iloc[val_idx]
        probability[val_idx] = model.predict_proba(held)[:, 1]
        has_log_odds = hasattr(model, "decision_function")
        score[val_idx] = model_score(model, held) if has_log_odds else probability[val_idx]
        scores.append(float(roc_auc_score(y[val_idx], probability[val_idx])))
    return OutOfFold(scores, probability, score)


def best_f1_threshold(y: np.ndarray, probability: np.ndarray) -> float:
    """The cut-off that maximises F1 on out-of-fold predictions (never on the test split)."""
    precision, recall, thresholds = precision_recall_curve(y, probability)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1[:-1]))
    return float(np.round(thresholds[best], 4))


def classification_metrics(y: np.ndarray, probability: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = (probability >= threshold).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y, probability)),
        "accuracy": float(accuracy_score(y, predicted)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "brier": float(brier_score_loss(y, probability)),
    }


def probability_histogram(probability: np.ndarray) -> dict[str, list[float]]:
    """Fractions of predictions in ten equal bins on [0, 1]: the drift reference."""
    counts, _ = np.histogram(np.clip(probability, 0.0, 1.0), bins=PROBABILITY_BINS)
    fractions = counts / max(len(probability), 1)
    return {
        "bins": [float(b) for b in PROBABILITY_BINS],
        "fractions": [float(f) for f in fractions],
    }
