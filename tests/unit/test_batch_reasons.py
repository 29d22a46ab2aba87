"""Reason codes in the batch core and the handler (``CHURN_SCORER_EXPLAIN``), without a broker."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import pytest

from config.settings import Settings
from kafka_io.records import RawRecord
from models.predictor import Explained, Predictor
from monitoring.metrics import ScorerMetrics
from producer.events import synthetic_events
from schemas.predictions import ChurnPrediction
from scorer.batch import BatchLimits, ReasonCodes, score_batch
from scorer.handler import BatchHandler

LIMITS = BatchLimits()


def _records(values: Sequence[bytes]) -> list[RawRecord]:
    return [RawRecord(v, b"k%d" % i, "events", 0, i, None) for i, v in enumerate(values)]


def _predictions(result: Any) -> list[ChurnPrediction]:
    return [ChurnPrediction.model_validate_json(p.value) for p in result.predictions]


def _as_tuples(reasons: Sequence[Any]) -> list[tuple[str, Any]]:
    return [(r["feature"], r["value"]) if isinstance(r, dict) else (r.feature, r.value) for r in reasons]


class Wrapped:
    """The real predictor, failing on the customers in ``poison`` or saying it cannot explain."""

    def __init__(self, inner: Predictor, poison: frozenset[str] = frozenset(), explainable: bool = True):
        self.inner = inner
        self.poison = poison
        self.explainable = explainable
        self.no_reasons_because = None if explainable else "a random forest averages its trees"
        self.version = inner.version
        self.threshold = inner.threshold
        self.explain_calls: list[int] = []

    def _check(self, columns: Mapping[str, Sequence[Any]]) -> None:
        if self.poison & set(columns["customer_id"]):
            raise RuntimeError("poisoned")

    def predict_columns(self, columns: Mapping[str, Sequence[Any]], n: int) -> np.ndarray:
        self._check(columns)
        return self.inner.predict_columns(columns, n)

    def explain_columns(
        self, columns: Mapping[str, Sequence[Any]], n: int, *, top: int = 3, down: int = 0
    ) -> Explained:
        self.explain_calls.append(n)
        self._check(columns)
        return self.inner.explain_columns(columns, n, top=top, down=down)


def test_each_prediction_carries_the_predictors_reasons_with_the_same_probability(
    predictor: Predictor,
) -> None:
    events = synthetic_events(200, seed=21)
    records = _records([orjson.dumps(e) for e in events])
    plain = _predictions(score_batch(records, predictor, LIMITS))
    model = Wrapped(predictor)
    result = score_batch(records, model, LIMITS, reasons=ReasonCodes(top=2, down=1))
    explained = _predictions(result)

    assert model.explain_calls == [200]  # once for the batch
    assert result.reasons_unavailable is None
    assert all(p.reasons is None and p.reasons_unavailable is None for p in plain)
    np.testing.assert_allclose(
        [p.churn_probability for p in explained], [p.churn_probability for p in plain], rtol=0, atol=1e-12
    )
    expected = predictor.explain_batch(events, top=2, down=1)
    for prediction, reasons in zip(explained, expected.reasons, strict=True):
        assert prediction.reasons is not None
        assert _as_tuples(prediction.reasons) == _as_tuples(reasons)
        np.testing.assert_allclose(
            [r.contribution for r in prediction.reasons],
            [r["contribution"] for r in reasons],
            rtol=0,
            atol=1e-12,
        )
        up = [r for r in prediction.reasons if r.contribution > 0]
        assert len(up) <= 2 and len(prediction.reasons) - len(up) <= 1
        assert prediction.reasons[: len(up)] == up  # up reasons first


def test_a_record_the_model_fails_on_is_dead_lettered_and_the_others_keep_their_reasons(
    predictor: Predictor,
) -> None:
    events = synthetic_events(16, seed=22)
    records = _records([orjson.dumps(e) for e in events])
    model = Wrapped(predictor, poison=frozenset({events[5]["customer_id"]}))
    result = score_batch(records, model, LIMITS, reasons=ReasonCodes())

    assert result.dead_letter_types == {"scoring_failed": 1}
    got = _predictions(result)
    kept = [e for i, e in enumerate(events) if i != 5]
    assert [p.customer_id for p in got] == [e["customer_id"] for e in kept]
    expected = predictor.explain_batch(kept)
    assert [_as_tuples(p.reasons or []) for p in got] == [_as_tuples(r) for r in expected.reasons]


def test_a_model_that_cannot_explain_scores_and_says_why(predictor: Predictor) -> None:
    events = synthetic_events(10, seed=23)
    records = _records([orjson.dumps(e) for e in events])
    model = Wrapped(predictor, explainable=False)
    result = score_batch(records, model, LIMITS, reasons=ReasonCodes())
    got = _predictions(result)

    assert model.explain_calls == []
    assert result.reasons_unavailable == "a random forest averages its trees"
    assert len(got) == 10
    assert all(p.reasons is None for p in got)
    assert {p.reasons_unavailable for p in got} == {"a random forest averages its trees"}
    np.testing.assert_allclose(
        [p.churn_probability for p in got], predictor.predict_batch(events), rtol=0, atol=1e-12
    )


class _Live:
    def __init__(self, model: Any) -> None:
        self.current = model
        self.predictor = model


def test_the_handler_explains_when_configured_and_warns_once_per_version(
    predictor: Predictor, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(scorer_explain=True, scorer_explain_top=1)
    metrics = ScorerMetrics.create()
    live = _Live(Wrapped(predictor, explainable=False))
    handler = BatchHandler(settings, live, metrics, sink=None)  # type: ignore[arg-type]
    records = _records([orjson.dumps(e) for e in synthetic_events(5, seed=24)])

    with caplog.at_level(logging.WARNING, logger="scorer.handler"):
        for _ in range(3):
            assert all(p.reasons is None for p in _predictions(handler.score(records)))
    warnings = [r for r in caplog.records if "serves no reason codes" in r.getMessage()]
    assert len(warnings) == 1 and predictor.version in warnings[0].getMessage()
    gauge = metrics.registry.get_sample_value
    assert gauge("churn_scorer_reasons", {"model_version": predictor.version}) == 0

    live.current = live.predictor = predictor  # a version that explains (same name: relabelled)
    handler._reasons_seen.clear()
    got = _predictions(handler.score(records))
    assert all(p.reasons is not None and len(p.reasons) <= 1 for p in got)
    assert gauge("churn_scorer_reasons", {"model_version": predictor.version}) == 1


def test_without_the_setting_the_handler_adds_no_reasons(predictor: Predictor) -> None:
    handler = BatchHandler(Settings(), _Live(predictor), ScorerMetrics.create(), sink=None)  # type: ignore[arg-type]
    records = _records([orjson.dumps(e) for e in synthetic_events(5, seed=25)])
    payloads = [orjson.loads(p.value) for p in handler.score(records).predictions]
    assert all("reasons" not in p and "reasons_unavailable" not in p for p in payloads)
    assert handler.metrics.registry.get_sample_value("churn_scorer_reasons", {"model_version": "x"}) is None
