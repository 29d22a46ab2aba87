"""Non-linear features for the numeric columns: logs and linear-spline (hinge) terms.

``NumericBasis`` appends, for each numeric column, ``log1p(x)`` (where asked)
and hinge terms ``max(0, x - knot)`` at quantile knots learnt in ``fit``. A
linear model on top of them bends where churn bends — steeply over the first
months of tenure, flat afterwards — yet stays a dot product, which is what lets
:mod:`models.fastpath` score one record in microseconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted


class NumericBasis(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Pass every column through, then add log1p and hinge terms for selected columns."""

    def __init__(
        self,
        spline_columns: tuple[int, ...] = (0, 1, 2),
        log_columns: tuple[int, ...] = (0, 2),
        n_knots: int = 6,
    ) -> None:
        self.spline_columns = spline_columns
        self.log_columns = log_columns
        self.n_knots = n_knots

    def fit(self, X: Any, y: Any = None) -> NumericBasis:  # noqa: N803 - sklearn API
        matrix = check_array(X, dtype=np.float64)
        self.n_features_in_ = matrix.shape[1]
        quantiles = np.linspace(0.0, 1.0, self.n_knots + 2)[1:-1]
        knots: list[np.ndarray] = []
        for column in self.spline_columns:
            values = np.unique(np.quantile(matrix[:, column], quantiles))
            knots.append(values.astype(np.float64))
        self.knots_ = knots
        self._index = np.concatenate(
            [np.full(len(k), c, dtype=np.intp) for c, k in zip(self.spline_columns, knots, strict=True)]
        )
        self._offsets = np.concatenate(knots)
        return self

    def transform(self, X: Any) -> np.ndarray:  # noqa: N803 - sklearn API
        check_is_fitted(self, "knots_")
        return self.fast_transform(check_array(X, dtype=np.float64))

    def fast_transform(self, matrix: np.ndarray) -> np.ndarray:
        """The transform without input checks, for matrices the encoder produced."""
        logs = np.log1p(np.maximum(matrix[:, list(self.log_columns)], 0.0))
        hinges = np.maximum(matrix[:, self._index] - self._offsets, 0.0)
        return np.hstack([matrix, logs, hinges])

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = (
            [f"x{i}" for i in range(self.n_features_in_)] if input_features is None else list(input_features)
        )
        out = list(names)
        out += [f"log1p({names[c]})" for c in self.log_columns]
        for column, knots in zip(self.spline_columns, self.knots_, strict=True):
            out += [f"max(0, {names[column]} - {k:g})" for k in knots]
        return np.asarray(out, dtype=object)
