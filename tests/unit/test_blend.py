"""The log-odds blend: its probability is expit of the weighted mean of its members' log-odds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

from models.blend import LogOddsBlend
from models.encoding import FeatureEncoder
from models.fastpath import TREE_MAX_ROWS
from models.predictor import Predictor
from training import candidates
from training.synthetic import generate


def members() -> list[tuple[str, object]]:
    return [
        ("spline_logistic", candidates.build(["spline_logistic"])["spline_logistic"][1:]),
        ("gradient_boosting", candidates.build(["gradient_boosting"])["gradient_boosting"][1:]),
    ]


def test_weighted_log_odds_and_the_compiled_scorer_agree_with_it() -> None:
    train, test = generate(1000, seed=4), generate(2 * TREE_MAX_ROWS, seed=5)
    blend = LogOddsBlend(members(), weights=[3.0, 1.0])
    pipeline = Pipeline([("encode", FeatureEncoder()), ("model", blend)]).fit(train, train["churn"])
    model = pipeline.named_steps["model"]
    np.testing.assert_allclose(model.weights_, [0.75, 0.25])
    matrix = FeatureEncoder().transform(test)
    linear, trees = model.estimators_
    expected = expit(0.75 * linear.decision_function(matrix) + 0.25 * trees.decision_function(matrix))
    np.testing.assert_allclose(pipeline.predict_proba(test)[:, 1], expected, rtol=0, atol=1e-12)
    assert (pipeline.predict(test) == (expected > 0.5)).all()
    predictor = Predictor(pipeline, {"version": "v"})
    assert predictor.fast_path and predictor.explainable
    for rows in (1, 5, TREE_MAX_ROWS, TREE_MAX_ROWS + 1, len(test)):  # both sides of the tree cut-over
        np.testing.assert_allclose(
            predictor.predict_matrix(matrix[:rows]), expected[:rows], rtol=0, atol=1e-12
        )


def test_members_without_log_odds_and_bad_weights_are_refused() -> None:
    train = generate(300, seed=6)
    x = FeatureEncoder().transform(train)
    with pytest.raises(TypeError, match="decision_function"):
        LogOddsBlend([("forest", RandomForestClassifier(n_estimators=5))]).fit(x, train["churn"])
    with pytest.raises(ValueError, match="weights"):
        LogOddsBlend(members(), weights=[1.0]).fit(x, train["churn"])
    with pytest.raises(ValueError, match="at least one"):
        LogOddsBlend([]).fit(x, train["churn"])
