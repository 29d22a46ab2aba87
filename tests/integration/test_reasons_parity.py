"""The same records get the same reasons from both stream engines, the API and ``churn predict``.

The model is a log-odds blend (spline logistic + gradient boosting), so both exact
decompositions and the batch-size-dependent tree path are exercised: the stream
cuts batches as records arrive, the API scores one request's batch, the CLI the
whole file. Features, values and order must be identical, contributions within 1e-12.
A model without an exact decomposition scores on the stream, says why on every
prediction and warns once.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from config.settings import Settings
from producer.events import synthetic_events
from schemas.predictions import ChurnPrediction
from tests.support.kafka_tools import KafkaTools
from tests.support.scorer_process import CHURN, ScorerProcess, scorer_env
from training.run import TrainConfig, train

pytestmark = pytest.mark.integration

TOP, DOWN = 3, 2
#: (feature, value as text, contribution) per reason, in order; values as the CLI writes them.
Reasons = list[tuple[str, str, float]]


@pytest.fixture(scope="module")
def blend_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("blend-store")
    outcome = train(
        TrainConfig(store=store, candidates=["blend"], plots=False, rows=2000, calibrate=False, cv_folds=3)
    )
    assert outcome.selected_model == "blend"
    return store


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _from_payload(payload: dict[str, Any]) -> Reasons:
    ChurnPrediction.model_validate(payload)
    return [(r["feature"], _text(r["value"]), r["contribution"]) for r in payload["reasons"]]


def _stream(
    kafka: KafkaTools, bootstrap: str, store: Path, events: list[dict[str, Any]], tmp_path: Path
) -> dict[str, dict[str, Reasons]]:
    """Reasons by event_id from each engine, both reading the same events topic."""
    events_topic = kafka.unique("events")
    kafka.create_topics([events_topic], partitions=4)
    kafka.produce(events_topic, [(e["customer_id"].encode(), orjson.dumps(e)) for e in events])
    out: dict[str, dict[str, Reasons]] = {}
    for engine in ("faust", "native"):
        topics = {"events": events_topic, "predictions": kafka.unique("pred"), "dlq": kafka.unique("dlq")}
        kafka.create_topics([topics["predictions"], topics["dlq"]], partitions=4)
        env = scorer_env(bootstrap, store, topics, kafka.unique(f"reasons-{engine}"))
        env |= {
            "CHURN_SCORER_EXPLAIN": "true",
            "CHURN_SCORER_EXPLAIN_TOP": str(TOP),
            "CHURN_SCORER_EXPLAIN_DOWN": str(DOWN),
        }
        scorer = ScorerProcess(env, tmp_path / f"{engine}.log", engine=engine)
        try:
            records = kafka.consume(topics["predictions"], len(events), timeout=120, idle=2.0)
            letters = kafka.consume(topics["dlq"], 0, timeout=1, idle=1.0)
            assert scorer.stop() == 0, scorer.tail()
        finally:
            if scorer.running():
                scorer.kill()
        assert not letters, scorer.tail()
        payloads = [orjson.loads(r.value or b"") for r in records]
        out[engine] = {p["event_id"]: _from_payload(p) for p in payloads}
    return out


def _api(store: Path, events: list[dict[str, Any]]) -> tuple[dict[str, Reasons], dict[str, Reasons]]:
    """Reasons by event_id from /predict/batch (in two requests) and from /predict, one by one."""
    app = create_app(Settings(model_store=store, api_max_batch=500), poll=False)
    query = f"?explain=true&top={TOP}&down={DOWN}"
    batch: dict[str, Reasons] = {}
    single: dict[str, Reasons] = {}
    with TestClient(app) as client:
        for chunk in (events[:137], events[137:]):
            response = client.post(f"/predict/batch{query}", json=chunk)
            assert response.status_code == 200, response.text
            batch |= {p["event_id"]: _from_payload(p) for p in response.json()["predictions"]}
        for event in events[:40]:
            response = client.post(f"/predict{query}", json=event)
            assert response.status_code == 200, response.text
            single[event["event_id"]] = _from_payload(response.json())
    return batch, single


def _cli(store: Path, events: list[dict[str, Any]], tmp_path: Path) -> dict[str, Reasons]:
    """Reasons by customer_id from ``churn predict --explain`` on the events as a telco CSV."""
    from training.data import to_telco_csv

    source, scored = tmp_path / "events.csv", tmp_path / "scored.csv"
    to_telco_csv(pd.DataFrame(events).drop(columns=["event_id", "event_time"]), source)
    command = [CHURN, "predict", "-i", str(source), "-o", str(scored), "--store", str(store)]
    command += ["--explain", "--top", str(TOP), "--down", str(DOWN)]
    subprocess.run(command, check=True, capture_output=True)
    out = pd.read_csv(scored, dtype=str, keep_default_na=False)
    reasons: dict[str, Reasons] = {}
    for row in out.to_dict("records"):
        found: Reasons = []
        for direction, count in (("up", TOP), ("down", DOWN)):
            for i in range(1, count + 1):
                prefix = f"reason_{direction}_{i}"
                if row[prefix]:
                    found.append((row[prefix], row[f"{prefix}_value"], float(row[f"{prefix}_contribution"])))
        reasons[row["customerID"]] = found
    return reasons


def _assert_same(got: Reasons, expected: Reasons, where: str) -> None:
    assert [(f, v) for f, v, _ in got] == [(f, v) for f, v, _ in expected], where
    for (_, _, a), (_, _, b) in zip(got, expected, strict=True):
        assert abs(a - b) <= 1e-12, where


def test_stream_api_and_cli_give_identical_reasons(
    kafka: KafkaTools, kafka_bootstrap: str, blend_store: Path, tmp_path: Path
) -> None:
    events = synthetic_events(400, seed=31)
    for event in events[::50]:  # new customers: a blank total_charges is a value too
        event.update(tenure=0, total_charges=None)
    assert len({e["customer_id"] for e in events}) == len(events)

    stream = _stream(kafka, kafka_bootstrap, blend_store, events, tmp_path)
    batch, single = _api(blend_store, events)
    cli = _cli(blend_store, events, tmp_path)

    reference = stream["native"]
    assert set(reference) == {e["event_id"] for e in events}
    assert sum(1 for reasons in reference.values() if any(c < 0 for _, _, c in reasons)) > 0  # down ones
    assert any(v == "" for reasons in reference.values() for f, v, _ in reasons if f == "total_charges")
    for event in events:
        event_id = event["event_id"]
        expected = reference[event_id]
        assert expected, event_id
        _assert_same(stream["faust"][event_id], expected, f"faust {event_id}")
        _assert_same(batch[event_id], expected, f"/predict/batch {event_id}")
        _assert_same(cli[event["customer_id"]], expected, f"churn predict {event['customer_id']}")
        if event_id in single:
            _assert_same(single[event_id], expected, f"/predict {event_id}")


def test_a_model_without_exact_reasons_scores_and_says_why_on_the_stream(
    kafka: KafkaTools, kafka_bootstrap: str, tmp_path: Path
) -> None:
    from models.predictor import Predictor
    from models.registry import ModelRegistry

    store = tmp_path / "forest-store"
    train(TrainConfig(store=store, candidates=["random_forest"], plots=False, rows=1000, calibrate=False))
    forest = Predictor.from_registry(ModelRegistry(store))
    assert not forest.explainable and forest.no_reasons_because
    events = synthetic_events(60, seed=32)
    topics = {
        "events": kafka.unique("events"),
        "predictions": kafka.unique("pred"),
        "dlq": kafka.unique("dlq"),
    }
    kafka.create_topics(topics.values(), partitions=4)
    kafka.produce(topics["events"], [(e["customer_id"].encode(), orjson.dumps(e)) for e in events])
    env = scorer_env(kafka_bootstrap, store, topics, kafka.unique("forest"))
    env["CHURN_SCORER_EXPLAIN"] = "true"
    log_path = tmp_path / "native.log"
    scorer = ScorerProcess(env, log_path, engine="native")
    try:
        records = kafka.consume(topics["predictions"], len(events), timeout=90, idle=2.0)
        assert scorer.stop() == 0, scorer.tail()
    finally:
        if scorer.running():
            scorer.kill()
    payloads = [orjson.loads(r.value or b"") for r in records]
    assert len(payloads) == len(events)
    expected = dict(zip([e["event_id"] for e in events], forest.predict_batch(events).tolist(), strict=True))
    for payload in payloads:
        assert payload["reasons"] is None
        assert payload["reasons_unavailable"] == forest.no_reasons_because
        assert payload["churn_probability"] == pytest.approx(expected[payload["event_id"]], abs=1e-12)
    warnings = [line for line in log_path.read_text().splitlines() if "serves no reason codes" in line]
    assert len(warnings) == 1, warnings  # once per model version, not once per batch
