"""Shadow scoring in the batch handler: the challenger's predictions beside the champion's, never instead."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from api.app import create_app
from config.settings import Settings
from kafka_io.records import RawRecord
from models.live import LiveModel
from monitoring.metrics import ScorerMetrics
from producer.events import synthetic_events
from scorer.handler import BatchHandler
from tests.support.api_support import Store, records, store_copy

SETTINGS = Settings(shadow_predictions_topic="shadow", predictions_topic="preds", dlq_topic="dlq")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    copy = store_copy(tmp_path_factory)
    copy.registry.set_challenger(copy.v2)
    return copy


def _batch(n: int) -> list[RawRecord]:
    events = synthetic_events(n, seed=5)
    records = [RawRecord(orjson.dumps(e), b"k", "events", 0, i) for i, e in enumerate(events)]
    records.append(RawRecord(b"{not json", b"k", "events", 0, n))  # a dead letter: no shadow for it
    return records


def _handler(store: Store, challenger: Any = None) -> BatchHandler:
    live = LiveModel.load(store.registry)
    if challenger is None:
        challenger = LiveModel(store.registry, role="challenger")
        challenger.refresh()
    return BatchHandler(SETTINGS, live, ScorerMetrics.create(), sink=None, challenger=challenger)  # type: ignore[arg-type]


def _value(handler: BatchHandler, name: str, **labels: str) -> float:
    return handler.metrics.registry.get_sample_value(name, labels) or 0.0


def test_the_challenger_scores_the_same_events_into_the_shadow_topic(store: Store) -> None:
    handler = _handler(store)
    result = handler.score(_batch(40))
    assert len(result.predictions) == 40 and len(result.dead_letters) == 1
    assert len(result.shadow) == 40
    outputs = dict(handler.outputs(result))
    assert outputs["shadow"] is result.shadow and outputs["preds"] is result.predictions
    champion = [orjson.loads(r.value or b"") for r in result.predictions]
    shadow = [orjson.loads(r.value or b"") for r in result.shadow]
    assert {p["model_version"] for p in champion} == {store.v1}
    assert {p["model_version"] for p in shadow} == {store.v2}
    assert [p["event_id"] for p in shadow] == [p["event_id"] for p in champion]
    assert [r.key for r in result.shadow] == [r.key for r in result.predictions]
    assert all(("role", b"challenger") in r.headers for r in result.shadow)
    assert not any(name == "role" for r in result.predictions for name, _ in r.headers)
    # The shadow is what the challenger would have said as champion.
    as_champion = LiveModel(store.registry).registry.vet(store.v2)
    expected = as_champion.predict_batch([orjson.loads(r.value or b"") for r in _batch(40)[:40]])
    assert np.allclose([p["churn_probability"] for p in shadow], expected, atol=1e-9)
    handler.record(result)
    assert _value(handler, "churn_shadow_predictions_total", model_version=store.v2) == 40


class _Broken:
    threshold = 0.5
    version = "broken-challenger"

    def predict_columns(self, columns: Mapping[str, Sequence[Any]], n: int) -> np.ndarray:
        raise RuntimeError("the challenger cannot score")


class _BrokenLive:
    predictor = _Broken()
    version = "broken-challenger"


def test_a_failing_challenger_never_costs_a_champion_prediction(store: Store) -> None:
    handler = _handler(store, challenger=_BrokenLive())
    result = handler.score(_batch(30))
    assert len(result.predictions) == 30 and not result.shadow
    assert [topic for topic, _ in handler.outputs(result)] == ["preds", "dlq"]
    handler.record(result)
    assert _value(handler, "churn_shadow_failures_total", model_version="broken-challenger") == 30
    assert (
        _value(handler, "churn_predictions_total", model_version=store.v1, outcome="churn")
        + _value(handler, "churn_predictions_total", model_version=store.v1, outcome="no_churn")
        == 30
    )


def test_cleared_challenger_stops_shadow_scoring_between_batches(store: Store, tmp_path: Path) -> None:
    shutil.copytree(store.path, tmp_path / "store")
    copy = Store(tmp_path / "store", store.v1, store.v2)
    handler = _handler(copy)
    assert handler.score(_batch(5)).shadow
    copy.registry.clear_challenger()
    handler.follow_models()
    assert not handler.score(_batch(5)).shadow
    assert _value(handler, "churn_challenger_info", version=copy.v2, model="") == 0.0
    copy.registry.set_challenger(copy.v2)
    handler.follow_models()
    assert handler.score(_batch(5)).shadow
    info = handler.metrics.registry.get_sample_value
    model = handler.challenger.predictor.info.selected_model  # type: ignore[union-attr]
    assert info("churn_challenger_info", {"version": copy.v2, "model": model}) == 1.0


async def _api_metric(client: httpx.AsyncClient, name: str, version: str) -> float:
    text = (await client.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith(f'{name}{{model_version="{version}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_the_api_scores_the_challenger_for_its_metrics_only(store: Store, tmp_path: Path) -> None:
    shutil.copytree(store.path, tmp_path / "store")
    asyncio.run(_api_shadow(Store(tmp_path / "store", store.v1, store.v2)))


async def _api_shadow(copy: Store) -> None:
    app = create_app(Settings(model_store=copy.path), poll=False)
    body = records(3, seed=9)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            one = await client.post("/predict", json=body[0])
            assert one.status_code == 200
            assert one.json()["model_version"] == copy.v1 and "shadow" not in one.json()
            many = await client.post("/predict/batch", json=body)
            assert many.status_code == 200 and many.json()["model_version"] == copy.v1
            assert await _api_metric(client, "churn_shadow_predictions_total", copy.v2) == 4
            copy.registry.clear_challenger()
            assert (await client.post("/admin/reload")).status_code == 200
            await client.post("/predict", json=body[0])
            assert await _api_metric(client, "churn_shadow_predictions_total", copy.v2) == 4
            metrics_text = (await client.get("/metrics")).text
            assert "churn_challenger_info{" not in metrics_text
