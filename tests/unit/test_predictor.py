"""Predictor gives the fitted sklearn pipeline's probabilities for every record, single or batch."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.encoding import FeatureEncoder, feature_names
from models.fastpath import TREE_MAX_ROWS
from models.predictor import Predictor
from schemas import CustomerEvent
from tests.support.fitted import fitted
from training import candidates
from training.synthetic import generate

TOLERANCE = 1e-9


def as_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows = frame.to_dict("records")
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows]


def as_events(frame: pd.DataFrame) -> list[CustomerEvent]:
    return [
        CustomerEvent.model_validate({**r, "event_id": f"e{i}", "event_time": "2026-01-01T00:00:00Z"})
        for i, r in enumerate(as_records(frame))
    ]


@pytest.fixture(scope="module")
def random_customers() -> pd.DataFrame:
    """Many records, including blank total charges and values beyond the training range."""
    frame = generate(3000, seed=123)
    rng = np.random.default_rng(0)
    wild = rng.choice(len(frame), 200, replace=False)
    frame.loc[wild[:100], "tenure"] = rng.integers(73, 1200, 100)
    frame.loc[wild[100:], "monthly_charges"] = rng.uniform(0, 5000, 100).round(2)
    frame.loc[wild[:30], "total_charges"] = np.nan
    return frame


@pytest.fixture(scope="module", params=list(candidates.CANDIDATES))
def predictor(request: pytest.FixtureRequest) -> Predictor:
    """Every candidate type: compiled numpy path and sklearn fallback alike."""
    pipeline = fitted(request.param, generate(1200, seed=1))
    return Predictor(pipeline, {"version": f"test-{request.param}", "threshold": 0.4})


def test_batch_matches_the_sklearn_pipeline(predictor: Predictor, random_customers: pd.DataFrame) -> None:
    expected = predictor.pipeline.predict_proba(random_customers)[:, 1]
    events = as_events(random_customers)
    np.testing.assert_allclose(predictor.predict_batch(events), expected, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(
        predictor.predict_batch(as_records(random_customers)), expected, rtol=0, atol=TOLERANCE
    )
    np.testing.assert_allclose(predictor.predict_frame(random_customers), expected, rtol=0, atol=TOLERANCE)


def test_single_records_match_the_sklearn_pipeline(
    predictor: Predictor, random_customers: pd.DataFrame
) -> None:
    # sklearn's one-row path costs ~0.1 s for the forest (the fallback): fewer rows for it
    sample = random_customers.iloc[:: 15 if predictor.fast_path else 150]
    expected = predictor.pipeline.predict_proba(sample)[:, 1]
    got = [predictor.predict_one(e) for e in as_events(sample)]
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)
    got_dicts = [predictor.predict_one(r) for r in as_records(sample)]
    np.testing.assert_allclose(got_dicts, expected, rtol=0, atol=TOLERANCE)


def test_supported_models_are_compiled_and_forests_fall_back(predictor: Predictor) -> None:
    assert predictor.fast_path is (predictor.version != "test-random_forest")


def test_compiled_scorer_matches_sklearn_on_every_row(
    predictor: Predictor, random_customers: pd.DataFrame
) -> None:
    """The compiled scorer, on single rows and on batches on both sides of the tree cut-over."""
    compiled = predictor._fast
    if compiled is None:  # random forests run through sklearn by design
        assert predictor.version == "test-random_forest"
        return
    matrix = FeatureEncoder().transform(random_customers)
    expected = predictor.pipeline.predict_proba(random_customers)[:, 1]
    np.testing.assert_allclose(compiled(matrix), expected, rtol=0, atol=TOLERANCE)
    for size in (1, 7, TREE_MAX_ROWS, TREE_MAX_ROWS + 1):
        np.testing.assert_allclose(compiled(matrix[:size]), expected[:size], rtol=0, atol=TOLERANCE)


def test_fast_path_check_keeps_agreeing_compiled_scorers(
    predictor: Predictor, random_customers: pd.DataFrame
) -> None:
    before = predictor.fast_path
    predictor.check_fast_path(as_events(random_customers.head(50)))
    assert predictor.fast_path is before


def test_fast_path_is_dropped_when_it_disagrees(
    random_customers: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    train = generate(800, seed=2)
    pipeline = candidates.build(["logistic_regression"])["logistic_regression"]
    pipeline.fit(train, train["churn"])
    predictor = Predictor(pipeline, {"version": "v"})
    assert predictor.fast_path
    pipeline.named_steps["model"].intercept_ = pipeline.named_steps["model"].intercept_ + 1.0
    predictor.check_fast_path(as_events(random_customers.head(20)))
    assert not predictor.fast_path
    assert "compiled scorer disagrees with sklearn for v; using sklearn" in caplog.text
    expected = pipeline.predict_proba(random_customers)[:, 1]
    np.testing.assert_allclose(predictor.predict_frame(random_customers), expected, rtol=0, atol=TOLERANCE)


def test_empty_batch_and_decision(predictor: Predictor) -> None:
    assert predictor.predict_batch([]).shape == (0,)
    assert predictor.decide(np.array([0.39, 0.4, 0.9])).tolist() == [False, True, True]


def test_encoder_paths_agree_and_impute_new_customers(random_customers: pd.DataFrame) -> None:
    encoder = FeatureEncoder()
    from_frame = encoder.transform(random_customers)
    from_records = encoder.encode_records(as_events(random_customers))
    np.testing.assert_array_equal(from_frame, from_records)
    for i, record in enumerate(as_records(random_customers.head(40))):
        np.testing.assert_array_equal(encoder.encode_one(record)[0], from_frame[i])
    assert from_frame.shape[1] == len(feature_names())
    new = random_customers["total_charges"].isna().to_numpy()
    expected = random_customers["tenure"].to_numpy() * random_customers["monthly_charges"].to_numpy()
    np.testing.assert_array_equal(from_frame[new, 2], expected[new])


def test_the_pipeline_must_start_with_the_encoder() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    with pytest.raises(TypeError, match="FeatureEncoder"):
        Predictor(Pipeline([("model", LogisticRegression())]), {"version": "v"})


def _fitted(*steps: Any, rows: int = 600, classes: int = 2) -> Any:
    """``FeatureEncoder`` then ``steps``, fitted on synthetic customers (``classes`` labels)."""
    from sklearn.pipeline import Pipeline

    train = generate(rows, seed=8)
    label = train["churn"].to_numpy() if classes == 2 else np.arange(rows) % classes
    return Pipeline([("encode", FeatureEncoder()), *steps]).fit(train, label)


def test_compiled_tails_cover_votes_scalers_and_pass_through_steps(random_customers: pd.DataFrame) -> None:
    """Every compiled shape gives sklearn's probabilities; weights and scaler options are honoured."""
    from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from models.calibration import SigmoidCalibrated

    def members() -> list[tuple[str, Any]]:
        return [
            ("linear", Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression(C=0.1))])),
            ("trees", HistGradientBoostingClassifier(max_iter=20, random_state=0)),
        ]

    shapes = {
        "soft vote": _fitted(("model", VotingClassifier(members(), voting="soft"))),
        "weighted soft vote": _fitted(("model", VotingClassifier(members(), voting="soft", weights=[3, 1]))),
        "no centring": _fitted(("scale", StandardScaler(with_mean=False)), ("lr", LogisticRegression())),
        "no scaling": _fitted(("scale", StandardScaler(with_std=False)), ("lr", LogisticRegression())),
        "pass-through steps": _fitted(
            ("skip", "passthrough"),
            ("inner", Pipeline([("scale", StandardScaler()), ("none", None), ("lr", LogisticRegression())])),
        ),
        "a step then a nested pipeline": _fitted(
            ("scale", StandardScaler()),
            (
                "inner",
                Pipeline(
                    [("rescale", StandardScaler(with_mean=False)), ("lr", LogisticRegression(max_iter=1000))]
                ),
            ),
        ),
        # a soft vote has no decision_function: the calibration is fitted on its probabilities
        "sigmoid around a soft vote": _fitted(
            ("model", SigmoidCalibrated(VotingClassifier(members(), voting="soft"), cv=3))
        ),
    }
    for name, pipeline in shapes.items():
        predictor = Predictor(pipeline, {"version": name})
        assert predictor.fast_path, name
        expected = pipeline.predict_proba(random_customers)[:, 1]
        np.testing.assert_allclose(
            predictor.predict_frame(random_customers), expected, rtol=0, atol=TOLERANCE, err_msg=name
        )


def test_what_the_compiler_cannot_express_runs_through_sklearn(random_customers: pd.DataFrame) -> None:
    """A hard vote, more than two classes or an unknown transformer: sklearn scores, same numbers."""
    from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import MinMaxScaler

    shapes = {
        "hard vote": _fitted(
            ("model", VotingClassifier([("a", LogisticRegression()), ("b", LogisticRegression(C=0.1))]))
        ),
        "three-class logistic": _fitted(("model", LogisticRegression()), classes=3),
        "three-class trees": _fitted(
            ("model", HistGradientBoostingClassifier(max_iter=10, random_state=0)), classes=3
        ),
        "unknown transformer": _fitted(("scale", MinMaxScaler()), ("model", LogisticRegression())),
    }
    sample = random_customers.head(50)
    for name, pipeline in shapes.items():
        predictor = Predictor(pipeline, {"version": name})
        assert not predictor.fast_path, name
        if name != "hard vote":  # a hard vote has no probabilities at all
            expected = pipeline.predict_proba(sample)[:, 1]
            got = predictor.predict_frame(sample)
            np.testing.assert_allclose(got, expected, rtol=0, atol=0, err_msg=name)


def test_a_manifest_with_only_a_version_gets_the_documented_defaults() -> None:
    from sklearn.linear_model import LogisticRegression

    from models.predictor import ModelInfo

    predictor = Predictor(_fitted(("model", LogisticRegression())), {"version": 7})
    assert predictor.info == ModelInfo(version="7", selected_model="unknown", threshold=0.5, created_at="")
    assert predictor.decide(np.array([0.49, 0.5])).tolist() == [False, True]


def test_nothing_in_gives_nothing_out(random_customers: pd.DataFrame) -> None:
    pipeline = candidates.build(["spline_logistic"])["spline_logistic"]
    predictor = Predictor(pipeline.fit(random_customers, random_customers["churn"]), {"version": "v"})
    assert predictor.predict_columns({}, 0).shape == (0,)
    assert predictor.predict_frame(random_customers.head(0)).shape == (0,)
    for explained in (predictor.explain_batch([]), predictor.explain_columns({}, 0)):
        assert explained.probability.shape == (0,)
        assert explained.reasons == []
    predictor.check_fast_path([])
    predictor.check_reasons([])
    assert predictor.fast_path and predictor.explainable


def test_events_and_dicts_get_the_same_reasons(random_customers: pd.DataFrame) -> None:
    pipeline = candidates.build(["spline_logistic"])["spline_logistic"]
    predictor = Predictor(pipeline.fit(random_customers, random_customers["churn"]), {"version": "v"})
    sample = random_customers.head(30)
    from_events = predictor.explain_batch(as_events(sample), top=2, down=1)
    from_dicts = predictor.explain_batch(as_records(sample), top=2, down=1)
    assert from_events.reasons == from_dicts.reasons
    np.testing.assert_array_equal(from_events.probability, from_dicts.probability)
    for event, reasons in zip(as_events(sample), from_events.reasons, strict=True):
        assert predictor.explain_one(event, top=2, down=1)[1] == reasons


# --- what the mutation run of models/predictor.py found unchecked ---------------------------------
def _linear() -> Predictor:
    return Predictor(fitted("logistic_regression", generate(1200, seed=1)), {"version": "v"})


def test_a_predictor_from_the_store_carries_its_manifest(tmp_path: Any) -> None:
    from models import artifact
    from models.registry import MANIFEST_FILE, ModelRegistry

    registry = ModelRegistry(tmp_path)
    manifest = {
        "selected_model": "logistic_regression",
        "threshold": 0.3,
        "created_at": "2026-12-02T00:00:00Z",
    }
    for version in ("v1", "v2"):
        with registry.stage(version) as folder:
            artifact.dump(fitted("logistic_regression", generate(1200, seed=1)), folder)
            (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    registry.promote("v1")
    assert Predictor.from_registry(registry, "v2").version == "v2"  # the version named, not the current one
    for predictor in (Predictor.from_registry(registry), Predictor.from_registry(registry, "v1")):
        assert predictor.manifest == registry.manifest("v1")
        info = predictor.info
        assert (info.version, info.selected_model, info.threshold, info.created_at) == (
            "v1", "logistic_regression", 0.3, "2026-12-02T00:00:00Z"
        )  # fmt: skip


def test_a_pipeline_without_the_encoder_first_is_refused_in_words() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    with pytest.raises(TypeError, match="^the pipeline must start with models.encoding.FeatureEncoder$"):
        Predictor(Pipeline([("model", LogisticRegression())]), {"version": "v"})


def test_the_load_time_checks_allow_rounding_and_nothing_more(
    random_customers: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    """A model 5e-9 off in log-odds: ~1e-9 in probability, past both checks' tolerances."""
    predictor = _linear()
    records = as_events(random_customers.head(20))
    model = predictor.pipeline.named_steps["model"]
    model.intercept_ = model.intercept_ + 5e-9  # the compiled scorer and the explainer keep copies
    predictor.check_fast_path(records)
    predictor.check_reasons(records)
    assert predictor.fast_path is False
    assert predictor.no_reasons_because == "its reason codes failed the load-time check"
    assert [r.getMessage() for r in caplog.records if r.name == "models.predictor"] == [
        "compiled scorer disagrees with sklearn for v; using sklearn",
        "reason codes do not add up to the log-odds for v; serving none",
    ]


def test_sklearn_runs_without_its_input_checks_on_the_serving_paths(
    random_customers: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inputs are validated and encoded before the model: sklearn's own checks would only cost time."""
    import sklearn
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    seen: list[tuple[str, bool, bool]] = []

    def spying(cls: Any, method: str) -> None:
        original = getattr(cls, method)

        def spy(self: Any, matrix: Any) -> Any:
            config = sklearn.get_config()
            seen.append((method, config["assume_finite"], config["skip_parameter_validation"]))
            return original(self, matrix)

        monkeypatch.setattr(cls, method, spy)

    spying(LogisticRegression, "predict_proba")
    spying(LogisticRegression, "decision_function")
    spying(RandomForestClassifier, "predict_proba")
    records = as_events(random_customers.head(5))
    linear = _linear()
    linear.check_fast_path(records)
    linear.check_reasons(records)
    Predictor(fitted("random_forest", generate(1200, seed=1)), {"version": "f"}).predict_batch(records)
    assert {method for method, *_ in seen} == {"predict_proba", "decision_function"}
    assert all((finite, unvalidated) == (True, True) for _, finite, unvalidated in seen)


def test_reasons_default_to_the_top_three_and_follow_top_and_down(random_customers: pd.DataFrame) -> None:
    from scorer.fast_check import columns_of

    predictor = _linear()
    events = as_events(random_customers.head(4))
    columns, n = columns_of(events), len(events)
    batches = [predictor.explain_batch(events).reasons, predictor.explain_columns(columns, n).reasons]
    batches.append([predictor.explain_one(event)[1] for event in events])
    for reasons in batches:
        assert [len(r) for r in reasons] == [3] * n
    assert [len(r) for r in predictor.explain_batch(events, top=2, down=1).reasons] == [3] * n
    assert [len(r) for r in predictor.explain_columns(columns, n, top=1).reasons] == [1] * n
    np.testing.assert_array_equal(predictor.predict_columns(columns, n), predictor.predict_batch(events))


def test_explaining_a_frame_gives_its_probabilities_and_every_contribution(
    random_customers: pd.DataFrame,
) -> None:
    predictor = _linear()
    frame = random_customers.head(50)
    probability, contributions = predictor.explain_frame(frame)
    np.testing.assert_array_equal(probability, predictor.predict_frame(frame))
    log_odds = predictor.pipeline[1:].decision_function(predictor.pipeline[0].transform(frame))
    np.testing.assert_allclose(contributions.log_odds(), log_odds, rtol=0, atol=TOLERANCE)
