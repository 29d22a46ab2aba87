"""Reason codes in the API: ``?explain=true&top=&down=`` on /predict and /predict/batch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from config.settings import Settings
from models.predictor import Predictor
from models.registry import ModelRegistry
from schemas.predictions import ChurnPrediction
from tests.support.api_support import Store, customer, records, store_copy
from training.run import TrainConfig, train


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return store_copy(tmp_path_factory)


def make_client(store_path: Path) -> TestClient:
    app = create_app(Settings(model_store=store_path, api_max_batch=50), poll=False)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(store: Store) -> Iterator[TestClient]:
    with make_client(store.path) as c:
        yield c


@pytest.fixture(scope="module")
def predictor(store: Store) -> Predictor:
    return Predictor.from_registry(store.registry)


@pytest.fixture(scope="module")
def forest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    """A service whose model (a random forest) has no exact decomposition, and why."""
    root = tmp_path_factory.mktemp("forest-store")
    train(TrainConfig(store=root, candidates=["random_forest"], plots=False, rows=1000))
    model = Predictor.from_registry(ModelRegistry(root))
    assert not model.explainable and model.no_reasons_because
    with make_client(root) as c:
        yield c, model.no_reasons_because


def reasons_of(payload: dict[str, Any]) -> list[tuple[str, Any, float]]:
    return [(r["feature"], r["value"], r["contribution"]) for r in payload["reasons"]]


def test_without_explain_there_are_no_reason_fields(client: TestClient) -> None:
    for query in ("", "?explain=false", "?explain=false&top=5&down=1"):
        payload = client.post(f"/predict{query}", json=customer()).json()
        assert "reasons" not in payload and "reasons_unavailable" not in payload
        batch = client.post(f"/predict/batch{query}", json=records(3)).json()
        assert all("reasons" not in p for p in batch["predictions"])


def test_predict_explains_with_the_predictors_reasons(client: TestClient, predictor: Predictor) -> None:
    summary = client.get("/model").json()
    assert (summary["reasons_available"], summary["reasons_unavailable"]) == (True, None)
    body = customer()
    response = client.post("/predict?explain=true", json=body)
    assert response.status_code == 200
    payload = response.json()
    prediction = ChurnPrediction.model_validate(payload)
    probability, expected = predictor.explain_one(body)
    assert prediction.churn_probability == pytest.approx(probability, abs=1e-12)
    assert abs(prediction.churn_probability - predictor.predict_one(body)) < 1e-12
    assert [(r["feature"], r["value"]) for r in payload["reasons"]] == [
        (r["feature"], r["value"]) for r in expected
    ]
    assert [r["contribution"] for r in payload["reasons"]] == pytest.approx(
        [r["contribution"] for r in expected], abs=1e-12
    )
    assert 1 <= len(payload["reasons"]) <= 3
    assert all(r["contribution"] > 0 for r in payload["reasons"])  # up reasons only by default
    assert [r["contribution"] for r in payload["reasons"]] == sorted(
        (r["contribution"] for r in payload["reasons"]), reverse=True
    )
    assert all(r["value"] == body[r["feature"]] for r in payload["reasons"])


def test_top_and_down_choose_how_many_reasons_each_way(client: TestClient, predictor: Predictor) -> None:
    body = customer()
    payload = client.post("/predict?explain=1&top=2&down=2", json=body).json()
    _, expected = predictor.explain_one(body, top=2, down=2)
    assert [r["feature"] for r in payload["reasons"]] == [r["feature"] for r in expected]
    signs = [r["contribution"] > 0 for r in payload["reasons"]]
    assert signs == sorted(signs, reverse=True)  # up reasons first, then down ones
    assert sum(signs) <= 2 and len(signs) - sum(signs) <= 2
    assert not all(signs)  # this customer has features pushing churn down


def test_batch_explains_each_record_in_order(client: TestClient, predictor: Predictor) -> None:
    bodies = records(20, seed=11)
    response = client.post("/predict/batch?explain=true&top=4", json=bodies)
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    explained = predictor.explain_batch(bodies, top=4)
    assert [p["customer_id"] for p in predictions] == [b["customer_id"] for b in bodies]
    for payload, probability, expected in zip(
        predictions, explained.probability, explained.reasons, strict=True
    ):
        ChurnPrediction.model_validate(payload)
        assert payload["churn_probability"] == pytest.approx(probability, abs=1e-12)
        assert [(f, v) for f, v, _ in reasons_of(payload)] == [(r["feature"], r["value"]) for r in expected]
        assert [c for _, _, c in reasons_of(payload)] == pytest.approx(
            [r["contribution"] for r in expected], abs=1e-12
        )
    # the same record explained alone gets the same reasons as in the batch
    alone = client.post("/predict?explain=true&top=4", json=bodies[3]).json()
    assert [f for f, _, _ in reasons_of(alone)] == [f for f, _, _ in reasons_of(predictions[3])]
    assert [c for _, _, c in reasons_of(alone)] == pytest.approx(
        [c for _, _, c in reasons_of(predictions[3])], abs=1e-12
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("explain=maybe", "query.explain"),
        ("explain=true&top=0", "query.top"),
        ("explain=true&top=20", "query.top"),
        ("explain=true&top=three", "query.top"),
        ("explain=true&down=-1", "query.down"),
        ("top=50", "query.top"),
    ],
)
def test_bad_explain_parameters_are_422_naming_the_parameter(
    client: TestClient, query: str, field: str
) -> None:
    for path in ("/predict", "/predict/batch"):
        body: Any = customer() if path == "/predict" else records(2)
        response = client.post(f"{path}?{query}", json=body)
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == [field]


def test_an_unexplainable_model_still_scores_and_says_why(forest: tuple[TestClient, str]) -> None:
    forest_client, why = forest
    body = customer()
    plain = forest_client.post("/predict", json=body).json()
    payload = forest_client.post("/predict?explain=true", json=body).json()
    prediction = ChurnPrediction.model_validate(payload)
    assert prediction.reasons is None and payload["reasons"] is None
    assert prediction.reasons_unavailable == why
    assert prediction.churn_probability == plain["churn_probability"]
    batch = forest_client.post("/predict/batch?explain=true", json=records(3)).json()["predictions"]
    assert [p["reasons"] for p in batch] == [None, None, None]
    assert [p["reasons_unavailable"] for p in batch] == [why, why, why]
    summary = forest_client.get("/model").json()
    assert (summary["reasons_available"], summary["reasons_unavailable"]) == (False, why)


def test_openapi_documents_explain_with_an_example(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/predict", "/predict/batch"):
        operation = spec["paths"][path]["post"]
        assert {p["name"] for p in operation["parameters"]} == {"explain", "top", "down"}
        examples = operation["responses"]["200"]["content"]["application/json"]["examples"]
        explained = examples["explained"]["value"]
        one = explained if path == "/predict" else explained["predictions"][0]
        assert ChurnPrediction.model_validate(one).reasons
        unexplained = examples["unexplainable"]["value"]
        one = unexplained if path == "/predict" else unexplained["predictions"][0]
        assert ChurnPrediction.model_validate(one).reasons_unavailable
    reason = spec["components"]["schemas"]["Reason"]
    assert set(reason["properties"]) == {"feature", "value", "contribution"}
