"""Reason codes: exact for every shipped candidate type, refused where no exact split exists."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import VotingClassifier
from sklearn.pipeline import Pipeline

from models.calibration import IsotonicCalibrated, SigmoidCalibrated
from models.encoding import FeatureEncoder
from models.explain import Contributions, NotExplainableError
from models.fastpath import TREE_MAX_ROWS
from models.predictor import Predictor
from schemas.features import FEATURES
from tests.support.fitted import fitted
from training import candidates
from training.synthetic import generate

EXACT = 1e-9
EXPLAINABLE = ("logistic_regression", "spline_logistic", "gradient_boosting", "blend")


def as_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows = frame[list(FEATURES)].to_dict("records")
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows]


@pytest.fixture(scope="module")
def train_frame() -> pd.DataFrame:
    return generate(1200, seed=1)


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    """Many customers, with blank total charges and values beyond the training range."""
    frame = generate(3000, seed=321)
    rng = np.random.default_rng(7)
    wild = rng.choice(len(frame), 200, replace=False)
    frame.loc[wild[:100], "tenure"] = rng.integers(73, 1200, 100)
    frame.loc[wild[100:], "monthly_charges"] = rng.uniform(0, 5000, 100).round(2)
    frame.loc[wild[:40], "total_charges"] = np.nan
    return frame


def calibrated(
    kind: type[SigmoidCalibrated] | type[IsotonicCalibrated], name: str, frame: pd.DataFrame
) -> Pipeline:
    return fitted(name, frame, kind)


@pytest.fixture(scope="module", params=[*EXPLAINABLE, "spline_logistic+sigmoid", "gradient_boosting+sigmoid"])
def explainable(request: pytest.FixtureRequest, train_frame: pd.DataFrame) -> Pipeline:
    name, _, calibration = request.param.partition("+")
    if calibration:
        return calibrated(SigmoidCalibrated, name, train_frame)
    return fitted(name, train_frame)


def test_contributions_add_up_to_the_log_odds_exactly(explainable: Pipeline, customers: pd.DataFrame) -> None:
    predictor = Predictor(explainable, {"version": "v"})
    assert predictor.explainable and predictor.no_reasons_because is None
    expected = explainable.decision_function(customers)
    matrix = FeatureEncoder().transform(customers)
    for rows in (slice(0, 1), slice(0, 7), slice(0, TREE_MAX_ROWS + 1), slice(None)):
        got = predictor.contributions(matrix[rows])
        assert got.values.shape == (len(expected[rows]), len(FEATURES))
        np.testing.assert_allclose(got.log_odds(), expected[rows], rtol=0, atol=EXACT)
    # And the log-odds are the model's probabilities, not just its decision function.
    log_odds = predictor.contributions(matrix).log_odds()
    np.testing.assert_allclose(
        1 / (1 + np.exp(-log_odds)), predictor.predict_matrix(matrix), rtol=0, atol=1e-12
    )


def test_every_feature_gets_a_share(explainable: Pipeline, customers: pd.DataFrame) -> None:
    """A feature the model uses moves some customer's contribution; none is silently dropped."""
    contributions = Predictor(explainable, {"version": "v"}).contributions(
        FeatureEncoder().transform(customers)
    )
    varied = contributions.values.std(axis=0) > 0
    for name in ("tenure", "contract", "internet_service", "payment_method"):
        assert varied[FEATURES.index(name)], name


@pytest.mark.parametrize(
    ("build", "why"),
    [
        (lambda f: fitted("random_forest", f), "random forest"),
        (lambda f: calibrated(IsotonicCalibrated, "spline_logistic", f), "isotonic"),
        (lambda f: calibrated(SigmoidCalibrated, "random_forest", f), "random forest"),
    ],
)
def test_models_without_an_exact_split_serve_no_reasons(
    build: Any, why: str, train_frame: pd.DataFrame, customers: pd.DataFrame
) -> None:
    predictor = Predictor(build(train_frame), {"version": "v"})
    assert not predictor.explainable
    assert why in (predictor.no_reasons_because or "")
    records = as_records(customers.head(5))
    with pytest.raises(NotExplainableError, match=why):
        predictor.explain_batch(records)
    with pytest.raises(NotExplainableError):
        predictor.explain_one(records[0])


def test_probability_averaging_vote_serves_no_reasons(train_frame: pd.DataFrame) -> None:
    """Versions trained before the log-odds blend (a soft VotingClassifier) still load and score."""
    tree = candidates.build(["gradient_boosting"])["gradient_boosting"][1:]
    linear = candidates.build(["spline_logistic"])["spline_logistic"][1:]
    vote = VotingClassifier([("a", linear), ("b", tree)], voting="soft")
    pipeline = Pipeline([("encode", FeatureEncoder()), ("model", vote)]).fit(
        train_frame, train_frame["churn"]
    )
    predictor = Predictor(pipeline, {"version": "v"})
    assert predictor.fast_path
    assert not predictor.explainable
    assert "averages its members' probabilities" in (predictor.no_reasons_because or "")


def test_top_reasons_are_ordered_signed_and_padded() -> None:
    values = np.array([[0.5, -0.2, 0.9, 0.0, -1.0] + [0.0] * (len(FEATURES) - 5), [-0.1] * len(FEATURES)])
    contributions = Contributions(np.zeros(2), values)
    features, shares = contributions.top(3)
    assert features.tolist() == [[2, 0, -1], [-1, -1, -1]]
    np.testing.assert_array_equal(shares[0, :2], [0.9, 0.5])
    assert np.isnan(shares[0, 2]) and np.isnan(shares[1]).all()
    down, down_shares = contributions.top(2, up=False)
    assert down.tolist() == [[4, 1], [0, 1]]  # ties keep the order of FEATURES
    np.testing.assert_array_equal(down_shares[0], [-1.0, -0.2])


def test_api_stream_and_single_paths_give_identical_reasons(
    customers: pd.DataFrame, train_frame: pd.DataFrame
) -> None:
    predictor = Predictor(fitted("blend", train_frame), {"version": "v"})
    records = as_records(customers.head(300))
    columns = {name: [r[name] for r in records] for name in FEATURES}
    batch = predictor.explain_batch(records, top=3, down=2)
    by_columns = predictor.explain_columns(columns, len(records), top=3, down=2)
    assert batch.reasons == by_columns.reasons
    np.testing.assert_array_equal(batch.probability, by_columns.probability)
    np.testing.assert_array_equal(batch.probability, predictor.predict_batch(records))
    for i in range(0, 300, 37):
        probability, reasons = predictor.explain_one(records[i], top=3, down=2)
        assert reasons == batch.reasons[i]
        assert probability == pytest.approx(batch.probability[i], abs=1e-12)


def test_reasons_name_the_feature_and_the_customers_value(train_frame: pd.DataFrame) -> None:
    predictor = Predictor(fitted("spline_logistic", train_frame), {"version": "v"})
    risky = {
        **as_records(train_frame.head(1))[0],
        "contract": "Month-to-month",
        "tenure": 1,
        "total_charges": None,
        "internet_service": "Fiber optic",
        "payment_method": "Electronic check",
    }
    probability, reasons = predictor.explain_one(risky, top=3, down=1)
    assert probability > 0.4  # well above the ~26 % base rate
    up = [r for r in reasons if r["contribution"] > 0]
    assert len(up) == 3 and [r["contribution"] for r in up] == sorted(
        (r["contribution"] for r in up), reverse=True
    )
    assert {r["feature"] for r in up} & {"contract", "tenure", "internet_service"}
    for reason in reasons:
        assert reason["value"] == risky[reason["feature"]]
    assert reasons[-1]["contribution"] < 0


def test_reasons_are_refused_when_they_stop_adding_up(
    train_frame: pd.DataFrame, customers: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = fitted("logistic_regression", train_frame)
    predictor = Predictor(pipeline, {"version": "v"})
    records = as_records(customers.head(20))
    predictor.check_reasons(records)
    assert predictor.explainable
    pipeline.named_steps["model"].coef_ = (
        pipeline.named_steps["model"].coef_ * 1.5
    )  # the explainer kept a copy
    predictor.check_reasons(records)
    assert not predictor.explainable
    assert "load-time check" in (predictor.no_reasons_because or "")
    assert "reason codes do not add up to the log-odds for v; serving none" in caplog.text
