"""A blend of binary classifiers that averages their log-odds.

sklearn's soft ``VotingClassifier`` averages probabilities, and the log-odds of
an average of probabilities is not a function of the members' log-odds that
splits feature by feature. Averaging the log-odds instead keeps the blend's
log-odds a weighted sum of its members' — so per-feature reason codes of the
members add up exactly to reason codes of the blend (:mod:`models.explain`),
and the compiled scorer is a weighted sum of compiled members
(:mod:`models.fastpath`).

It lives in ``models`` because serving unpickles it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted


class LogOddsBlend(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """``predict_proba = expit(sum_i w_i * f_i(X))``, ``f_i`` each member's ``decision_function``.

    The weights are normalised to sum to one, so the blend's log-odds is the
    weighted mean of the members' log-odds. Every member must be a binary
    classifier with a ``decision_function`` (logistic regression, gradient
    boosting, a pipeline ending in one of them).
    """

    def __init__(self, estimators: Sequence[tuple[str, Any]], weights: Sequence[float] | None = None) -> None:
        self.estimators = estimators
        self.weights = weights

    def fit(self, X: Any, y: Any) -> LogOddsBlend:  # noqa: N803 - sklearn API
        if not self.estimators:
            raise ValueError("LogOddsBlend needs at least one estimator")
        weights = np.ones(len(self.estimators)) if self.weights is None else np.asarray(self.weights, float)
        if weights.shape != (len(self.estimators),) or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"weights must be {len(self.estimators)} non-negative numbers, not all 0")
        fitted = [clone(estimator).fit(X, y) for _, estimator in self.estimators]
        for (name, _), member in zip(self.estimators, fitted, strict=True):
            if not hasattr(member, "decision_function"):
                raise TypeError(f"blend member {name!r} has no decision_function")
            if len(member.classes_) != 2:
                raise ValueError(f"blend member {name!r} is not a binary classifier")
        self.estimators_ = fitted
        self.named_estimators_ = {name: m for (name, _), m in zip(self.estimators, fitted, strict=True)}
        self.weights_ = weights / weights.sum()
        self.classes_ = fitted[0].classes_
        return self

    def decision_function(self, X: Any) -> np.ndarray:  # noqa: N803 - sklearn API
        """The blend's log-odds: the weighted mean of the members' log-odds."""
        check_is_fitted(self, "estimators_")
        total = np.zeros(0)
        for weight, member in zip(self.weights_, self.estimators_, strict=True):
            term = weight * np.asarray(member.decision_function(X), dtype=np.float64)
            total = term if total.size == 0 else total + term
        return total

    def predict_proba(self, X: Any) -> np.ndarray:  # noqa: N803 - sklearn API
        positive = expit(self.decision_function(X))
        return np.column_stack([1.0 - positive, positive])

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803 - sklearn API
        return np.asarray(self.classes_[(self.decision_function(X) > 0).astype(int)])
