"""Probability calibration of a fitted binary classifier, fitted on out-of-fold scores.

Both calibrators map the model's *score* — its ``decision_function`` (log-odds)
where it has one, else its churn probability — to a calibrated probability:

* :class:`SigmoidCalibrated` (Platt scaling): ``p = expit(a * score + b)``. On a
  log-odds score this is an affine map of the log-odds, so reason codes scale
  exactly (:mod:`models.explain`) and the compiled scorer stays a few numpy steps.
* :class:`IsotonicCalibrated`: a monotone step function of the score; it can fit
  any monotone distortion but is not a sum over features, so it serves no reasons.

The calibrator is fitted on out-of-fold scores of the training split and the
model itself on the whole training split — what sklearn's
``CalibratedClassifierCV(ensemble=False)`` does. Training builds them with
:meth:`from_out_of_fold` from the out-of-fold scores its cross-validation already
produced (``CalibratedClassifierCV`` would refit the model once per fold again);
``fit`` runs the whole procedure for use as an ordinary estimator.

They live in ``models`` because serving unpickles them.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.utils.validation import check_is_fitted


def model_score(estimator: Any, X: Any) -> np.ndarray:  # noqa: N803 - sklearn API
    """The score a calibrator reads: log-odds where the model has them, else P(churn)."""
    if hasattr(estimator, "decision_function"):
        return np.asarray(estimator.decision_function(X), dtype=np.float64)
    return np.asarray(estimator.predict_proba(X)[:, 1], dtype=np.float64)


def score_method(estimator: Any) -> str:
    """The method :func:`model_score` uses for ``estimator`` (for ``cross_val_predict``)."""
    return "decision_function" if hasattr(estimator, "decision_function") else "predict_proba"


class _Calibrated(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Shared fitting: out-of-fold scores for the calibrator, the whole data for the model."""

    def __init__(self, estimator: Any, cv: int = 5, random_state: int | None = 0) -> None:
        self.estimator = estimator
        self.cv = cv
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> Self:  # noqa: N803 - sklearn API
        folds = StratifiedKFold(n_splits=self.cv, shuffle=True, random_state=self.random_state)
        method = score_method(self.estimator)
        scores = cross_val_predict(clone(self.estimator), X, y, cv=folds, method=method)
        if method == "predict_proba":
            scores = scores[:, 1]
        return self._calibrate(clone(self.estimator).fit(X, y), np.asarray(scores, float), np.asarray(y))

    @classmethod
    def from_out_of_fold(cls, fitted: Any, scores: np.ndarray, y: np.ndarray) -> Self:
        """Wrap an already fitted model; fit the calibrator on its out-of-fold ``scores``."""
        return cls(fitted)._calibrate(fitted, np.asarray(scores, dtype=np.float64), np.asarray(y))

    def _calibrate(self, fitted: Any, scores: np.ndarray, y: np.ndarray) -> Self:
        raise NotImplementedError

    def score_of(self, X: Any) -> np.ndarray:  # noqa: N803 - sklearn API
        check_is_fitted(self, "estimator_")
        return model_score(self.estimator_, X)

    def predict_proba(self, X: Any) -> np.ndarray:  # noqa: N803 - sklearn API
        positive = self.calibrate(self.score_of(X))
        return np.column_stack([1.0 - positive, positive])

    def calibrate(self, score: np.ndarray) -> np.ndarray:
        """The calibrated P(churn) for model scores."""
        raise NotImplementedError

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803 - sklearn API
        return np.asarray(self.classes_[(self.predict_proba(X)[:, 1] > 0.5).astype(int)])


class SigmoidCalibrated(_Calibrated):
    """Platt scaling: ``P(churn) = expit(slope_ * score + intercept_)``."""

    def _calibrate(self, fitted: Any, scores: np.ndarray, y: np.ndarray) -> SigmoidCalibrated:
        # Unpenalised one-feature logistic regression of the outcome on the score: Platt's fit.
        platt = LogisticRegression(C=np.inf, max_iter=1000).fit(scores[:, None], y)
        self.estimator_ = fitted
        self.classes_ = fitted.classes_
        self.slope_ = float(platt.coef_[0, 0])
        self.intercept_ = float(platt.intercept_[0])
        self.on_log_odds_ = hasattr(fitted, "decision_function")
        return self

    def decision_function(self, X: Any) -> np.ndarray:  # noqa: N803 - sklearn API
        """The calibrated log-odds."""
        return self.slope_ * self.score_of(X) + self.intercept_

    def calibrate(self, score: np.ndarray) -> np.ndarray:
        return np.asarray(expit(self.slope_ * score + self.intercept_), dtype=np.float64)


class IsotonicCalibrated(_Calibrated):
    """A monotone step function of the score (sklearn's ``IsotonicRegression``)."""

    def _calibrate(self, fitted: Any, scores: np.ndarray, y: np.ndarray) -> IsotonicCalibrated:
        self.estimator_ = fitted
        self.classes_ = fitted.classes_
        self.isotonic_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, y)
        return self

    def calibrate(self, score: np.ndarray) -> np.ndarray:
        return np.asarray(self.isotonic_.predict(score), dtype=np.float64)
