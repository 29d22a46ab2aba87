"""The candidate models, each a full sklearn pipeline from raw records to a probability.

Every pipeline starts with the stateless :class:`models.encoding.FeatureEncoder`,
so the scoring core can run the rest of the pipeline on a matrix it encoded
itself, with no DataFrame. The design matrix starts with the numeric columns
``tenure, monthly_charges, total_charges`` (indices 0-2).

Why these candidates:

* ``logistic_regression`` — the classic baseline (one-hot, scaled, L2, C=1).
* ``random_forest`` — the classic non-linear baseline.
* ``spline_logistic`` — churn falls steeply in the first months and then
  flattens, and charges act non-linearly; linear splines (hinges at quantile
  knots) and logs of the numeric columns, with the L2 strength chosen by 5-fold
  CV on ROC AUC, let a linear model bend where the data bends while staying
  well calibrated and cheap to score (see :mod:`models.fastpath`).
* ``gradient_boosting`` — histogram gradient boosting, small trees and strong
  regularisation, captures interactions (contract x tenure, fibre x charges).
* ``blend`` — the average of the two above's log-odds
  (:class:`models.blend.LogOddsBlend`); their errors differ, so the average
  usually ranks customers better than either. Averaging log-odds rather than
  probabilities (sklearn's soft vote) keeps exact reason codes; on the telco
  file and the synthetic data both give the same held-out ROC AUC and Brier
  score within 0.0001 (docs/training.md).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from models.basis import NumericBasis
from models.blend import LogOddsBlend
from models.encoding import FeatureEncoder


def _logistic_regression(seed: int) -> Pipeline:
    return Pipeline(
        [
            ("encode", FeatureEncoder()),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(C=1.0, max_iter=5000)),
        ]
    )


def _random_forest(seed: int) -> Pipeline:
    return Pipeline(
        [
            ("encode", FeatureEncoder()),
            (
                "model",
                RandomForestClassifier(
                    n_estimators=300,
                    min_samples_leaf=5,
                    max_features="sqrt",
                    n_jobs=2,
                    random_state=seed,
                ),
            ),
        ]
    )


def _spline_logistic_model(seed: int) -> Pipeline:
    return Pipeline(
        [
            ("basis", NumericBasis(spline_columns=(0, 1, 2), log_columns=(0, 2), n_knots=6)),
            ("scale", StandardScaler()),
            (
                "model",
                LogisticRegressionCV(
                    Cs=np.logspace(-3, 1, 9),
                    cv=5,
                    scoring="roc_auc",
                    max_iter=5000,
                    l1_ratios=(0.0,),
                    use_legacy_attributes=False,
                ),
            ),
        ]
    )


def _gradient_boosting_model(seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        learning_rate=0.1,
        max_iter=100,
        max_leaf_nodes=8,
        min_samples_leaf=40,
        l2_regularization=2.0,
        early_stopping=False,
        random_state=seed,
    )


def _spline_logistic(seed: int) -> Pipeline:
    return Pipeline([("encode", FeatureEncoder()), ("model", _spline_logistic_model(seed))])


def _gradient_boosting(seed: int) -> Pipeline:
    return Pipeline([("encode", FeatureEncoder()), ("model", _gradient_boosting_model(seed))])


def _blend(seed: int) -> Pipeline:
    blend = LogOddsBlend(
        [
            ("spline_logistic", _spline_logistic_model(seed)),
            ("gradient_boosting", _gradient_boosting_model(seed)),
        ]
    )
    return Pipeline([("encode", FeatureEncoder()), ("model", blend)])


CANDIDATES: dict[str, Callable[[int], Pipeline]] = {
    "logistic_regression": _logistic_regression,
    "random_forest": _random_forest,
    "spline_logistic": _spline_logistic,
    "gradient_boosting": _gradient_boosting,
    "blend": _blend,
}


def build(names: list[str] | None = None, seed: int = 42) -> dict[str, Pipeline]:
    """Fresh, unfitted pipelines for the named candidates (all by default)."""
    chosen = names or list(CANDIDATES)
    unknown = [n for n in chosen if n not in CANDIDATES]
    if unknown:
        raise ValueError(f"unknown candidate(s): {unknown}; known: {list(CANDIDATES)}")
    return {name: CANDIDATES[name](seed) for name in chosen}
