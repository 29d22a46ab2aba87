"""/predict and /predict/batch give what `churn predict` gives for the same rows (within 1e-9),
and write the prediction the stream writes for the same event, field for field."""

from __future__ import annotations

import csv
from datetime import datetime
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from cli.main import app as churn
from config.settings import Settings
from kafka_io.records import RawRecord
from models.predictor import Predictor
from producer.events import synthetic_events
from schemas.predictions import ChurnPrediction
from scorer.batch import BatchLimits, score_batch
from tests.support.api_support import Store, store_copy
from training.data import to_telco_csv
from training.synthetic import generate

ROWS = 300


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, list[dict[str, str]], dict[str, float]]:
    """A telco CSV (with blank TotalCharges rows) and the probabilities `churn predict` wrote for it."""
    store = store_copy(tmp_path_factory)
    folder = tmp_path_factory.mktemp("parity")
    frame = generate(ROWS, seed=1234).drop(columns=["churn"])
    frame.loc[frame.index[::25], "total_charges"] = float("nan")  # brand-new customers
    source, output = folder / "in.csv", folder / "out.csv"
    to_telco_csv(frame, source)
    result = CliRunner().invoke(
        churn, ["predict", "--input", str(source), "--output", str(output), "--store", str(store.path)]
    )
    assert result.exit_code == 0, result.output
    with source.open() as handle:
        rows = list(csv.DictReader(handle))
    with output.open() as handle:
        expected = {r["customerID"]: float(r["churn_probability"]) for r in csv.DictReader(handle)}
    assert len(rows) == len(expected) == ROWS
    return store, rows, expected


def as_json(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row as a JSON client would send it: telco names, numbers as numbers."""
    body: dict[str, Any] = dict(row)
    body["tenure"] = int(row["tenure"])
    body["SeniorCitizen"] = int(row["SeniorCitizen"])
    body["MonthlyCharges"] = float(row["MonthlyCharges"])
    body["TotalCharges"] = float(row["TotalCharges"]) if row["TotalCharges"].strip() else None
    return body


@pytest.fixture(scope="module")
def client(scored: tuple[Store, Any, Any]) -> Any:
    store = scored[0]
    with TestClient(create_app(Settings(model_store=store.path), poll=False)) as c:
        yield c


def test_predict_matches_churn_predict(client: TestClient, scored: tuple[Store, Any, Any]) -> None:
    _, rows, expected = scored
    for row in rows:
        data = client.post("/predict", json=as_json(row)).json()
        assert abs(data["churn_probability"] - expected[row["customerID"]]) <= 1e-9, row["customerID"]


def test_batch_matches_churn_predict(client: TestClient, scored: tuple[Store, Any, Any]) -> None:
    _, rows, expected = scored
    data = client.post("/predict/batch", json=[as_json(r) for r in rows]).json()
    assert data["count"] == ROWS
    for prediction in data["predictions"]:
        assert abs(prediction["churn_probability"] - expected[prediction["customer_id"]]) <= 1e-9


def test_csv_text_values_give_the_same_answer(client: TestClient, scored: tuple[Store, Any, Any]) -> None:
    """Posting the CSV strings as they are (like the telco file) is scored the same way."""
    _, rows, expected = scored
    data = client.post("/predict/batch", json=rows[:50]).json()
    for prediction in data["predictions"]:
        assert abs(prediction["churn_probability"] - expected[prediction["customer_id"]]) <= 1e-9


def test_the_fixture_covers_blank_total_charges(scored: tuple[Store, Any, Any]) -> None:
    _, rows, _ = scored
    assert sum(1 for r in rows if not r["TotalCharges"].strip()) >= ROWS // 25


def test_the_stream_and_the_api_write_the_same_prediction(
    client: TestClient, scored: tuple[Store, Any, Any]
) -> None:
    store = scored[0]
    events = synthetic_events(20, seed=3)
    records = [
        RawRecord(orjson.dumps(e), e["customer_id"].encode(), "events", 0, offset)
        for offset, e in enumerate(events)
    ]
    result = score_batch(records, Predictor.from_registry(store.registry), BatchLimits())
    stream = [orjson.loads(record.value or b"") for record in result.predictions]
    single = [client.post("/predict", json=event).json() for event in events]
    batch = client.post("/predict/batch", json=events).json()["predictions"]
    assert len(stream) == len(single) == len(batch) == len(events)
    for written, one, many in zip(stream, single, batch, strict=True):
        assert list(written) == list(one) == list(many)  # the same fields, in the same order
        for field, value in written.items():
            if field == "scored_at":  # the time of scoring: the same form, not the same instant
                assert datetime.fromisoformat(value).tzinfo is not None
                assert datetime.fromisoformat(one[field]).tzinfo is not None
            elif field == "churn_probability":
                assert one[field] == pytest.approx(value, abs=1e-9) == many[field]
            else:
                assert one[field] == value == many[field], field
        ChurnPrediction.model_validate(written)
