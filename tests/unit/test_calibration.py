"""Calibration: fitted on out-of-fold scores, kept only when it helps and keeps reason codes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from models.calibration import IsotonicCalibrated, SigmoidCalibrated
from models.encoding import FeatureEncoder
from models.predictor import Predictor
from schemas.features import FEATURES
from training import calibrate, evaluate
from training.synthetic import generate


def squashed() -> Pipeline:
    """A logistic regression regularised so hard that its probabilities hug the base rate."""
    return Pipeline(
        [("encode", FeatureEncoder()), ("scale", StandardScaler()), ("model", LogisticRegression(C=2e-4))]
    )


@pytest.fixture(scope="module")
def split() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    train, test = generate(2000, seed=21), generate(1500, seed=22)
    return train[list(FEATURES)], train["churn"].to_numpy(), test[list(FEATURES)], test["churn"].to_numpy()


@pytest.fixture(scope="module")
def result(split: tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]) -> evaluate.CandidateResult:
    x_train, y_train, x_test, _ = split
    pipeline = squashed()
    oof = evaluate.cross_validate(pipeline, x_train, y_train, folds=5, seed=42)
    pipeline.fit(x_train, y_train)
    probability = pipeline.predict_proba(x_test)[:, 1]
    threshold = evaluate.best_f1_threshold(y_train, oof.probability)
    return evaluate.CandidateResult(
        "squashed", pipeline, threshold, oof.roc_auc, probability, oof_score=oof.score
    )


def test_out_of_fold_scores_are_log_odds(
    split: tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray],
) -> None:
    x_train, y_train, _, _ = split
    oof = evaluate.cross_validate(squashed(), x_train, y_train, folds=3, seed=1)
    np.testing.assert_allclose(expit(oof.score), oof.probability, rtol=0, atol=1e-12)
    assert len(oof.roc_auc) == 3


def test_a_squashed_model_is_recalibrated_with_reasons_kept(
    result: evaluate.CandidateResult, split: tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]
) -> None:
    _, y_train, x_test, y_test = split
    checked = calibrate.check(result, y_train, x_test, y_test)
    assert checked.kept is not None and checked.kept.method == "sigmoid"
    assert checked.kept.brier <= checked.brier - calibrate.MIN_BRIER_GAIN
    assert checked.kept.roc_auc == pytest.approx(checked.roc_auc, abs=1e-12)  # monotone: same ranking
    assert checked.kept.explainable and checked.explainable
    isotonic = next(v for v in checked.variants if v.method == "isotonic")
    assert not isotonic.explainable
    summary = checked.as_dict()
    assert summary["kept"] == "sigmoid"
    assert summary["before"]["brier"] > summary["after"]["brier"]
    assert set(summary["variants"]) == {"sigmoid", "isotonic"}
    # The decision threshold moves with the probabilities; the customers flagged stay the same.
    flagged_before = result.test_probability >= result.threshold
    flagged_after = checked.kept.test_probability >= checked.kept.threshold
    assert (flagged_before != flagged_after).mean() < 0.01


def test_calibrated_pipelines_score_the_same_through_predictor(
    result: evaluate.CandidateResult, split: tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]
) -> None:
    _, y_train, x_test, _ = split
    tail = result.pipeline[1:]
    for kind, compiled in ((SigmoidCalibrated, True), (IsotonicCalibrated, False)):
        pipeline = Pipeline(
            [("encode", FeatureEncoder()), ("model", kind.from_out_of_fold(tail, result.oof_score, y_train))]
        )
        predictor = Predictor(pipeline, {"version": kind.__name__})
        assert predictor.fast_path is compiled
        expected = pipeline.predict_proba(x_test)[:, 1]
        np.testing.assert_allclose(predictor.predict_frame(x_test), expected, rtol=0, atol=1e-12)


def test_fit_runs_the_whole_procedure(
    split: tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray],
) -> None:
    x_train, y_train, x_test, y_test = split
    raw = squashed().fit(x_train, y_train)
    calibrated = Pipeline([("encode", FeatureEncoder()), ("model", SigmoidCalibrated(squashed()[1:], cv=3))])
    calibrated.fit(x_train, y_train)
    model = calibrated.named_steps["model"]
    assert model.slope_ > 1.0  # stretches the squashed log-odds
    brier = lambda p: float(np.mean((p - y_test) ** 2))  # noqa: E731
    assert brier(calibrated.predict_proba(x_test)[:, 1]) < brier(raw.predict_proba(x_test)[:, 1])
