"""Cross-validation, threshold choice and held-out metrics for one candidate."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

PROBABILITY_BINS = np.linspace(0.0, 1.0, 11)


@dataclass
class CandidateResult:
    """A fitted candidate with its cross-validated and held-out figures."""

    name: str
    pipeline: Pipeline
    threshold: float
    cv_roc_auc: list[float]
    test_probability: np.ndarray
    metrics: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        return {
            **self.metrics,
            "cv_roc_auc_mean": float(np.mean(self.cv_roc_auc)),
            "cv_roc_auc_std": float(np.std(self.cv_roc_auc)),
            "threshold": self.threshold,
        }


def cross_validate(
    pipeline: Pipeline, x: pd.DataFrame, y: np.ndarray, *, folds: int, seed: int
) -> tuple[list[float], np.ndarray]:
    """Per-fold ROC AUC and out-of-fold probabilities on the training split."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    oof = np.zeros(len(y), dtype=np.float64)
    scores: list[float] = []
    for train_idx, val_idx in splitter.split(x, y):
        model = clone(pipeline).fit(x.iloc[train_idx], y[train_idx])
        proba = model.predict_proba(x.iloc[val_idx])[:, 1]
        oof[val_idx] = proba
        scores.append(float(roc_auc_score(y[val_idx], proba)))
    return scores, oof


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
    }


def probability_histogram(probability: np.ndarray) -> dict[str, list[float]]:
    """Fractions of predictions in ten equal bins on [0, 1]: the drift reference."""
    counts, _ = np.histogram(np.clip(probability, 0.0, 1.0), bins=PROBABILITY_BINS)
    fractions = counts / max(len(probability), 1)
    return {
        "bins": [float(b) for b in PROBABILITY_BINS],
        "fractions": [float(f) for f in fractions],
    }
