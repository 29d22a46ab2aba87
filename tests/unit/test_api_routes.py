"""Every route and every error code of the API, in process (TestClient runs the lifespan)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from config.settings import Settings
from models.predictor import Predictor
from schemas.predictions import ChurnPrediction
from tests.support.api_support import Store, customer, records, store_copy


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return store_copy(tmp_path_factory)


def make_client(store_path: Path, **settings: Any) -> TestClient:
    app = create_app(Settings(model_store=store_path, **settings), poll=False)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(store: Store) -> Iterator[TestClient]:
    with make_client(store.path, api_max_batch=5, api_max_body_bytes=4096) as c:
        yield c


@pytest.fixture(scope="module")
def predictor(store: Store) -> Predictor:
    return Predictor.from_registry(store.registry)


def metric_value(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


# ---------------------------------------------------------------------- /predict
def test_predict_returns_a_churn_prediction(client: TestClient, store: Store, predictor: Predictor) -> None:
    body = customer()
    response = client.post("/predict", json=body)
    assert response.status_code == 200
    prediction = ChurnPrediction.model_validate(response.json())
    assert prediction.customer_id == body["customer_id"]
    assert prediction.model_version == store.v1
    assert prediction.threshold == predictor.threshold
    assert prediction.churn == (prediction.churn_probability >= predictor.threshold)
    assert abs(prediction.churn_probability - predictor.predict_one(body)) < 1e-12
    assert len(prediction.event_id) == 32  # generated when the client sends none
    assert prediction.event_time is not None
    assert prediction.event_time.tzinfo is not None


def test_predict_keeps_the_clients_event_id_and_time(client: TestClient) -> None:
    body = customer(event_id="evt-1", event_time="2024-05-01T12:00:00")
    data = client.post("/predict", json=body).json()
    assert data["event_id"] == "evt-1"
    assert data["event_time"] == "2024-05-01T12:00:00+00:00"  # naive times are UTC


def test_predict_accepts_telco_column_names(client: TestClient) -> None:
    snake = customer()
    telco = {
        "customerID": snake["customer_id"],
        "gender": snake["gender"],
        "SeniorCitizen": snake["senior_citizen"],
        "Partner": snake["partner"],
        "Dependents": snake["dependents"],
        "tenure": snake["tenure"],
        "PhoneService": snake["phone_service"],
        "MultipleLines": snake["multiple_lines"],
        "InternetService": snake["internet_service"],
        "OnlineSecurity": snake["online_security"],
        "OnlineBackup": snake["online_backup"],
        "DeviceProtection": snake["device_protection"],
        "TechSupport": snake["tech_support"],
        "StreamingTV": snake["streaming_tv"],
        "StreamingMovies": snake["streaming_movies"],
        "Contract": snake["contract"],
        "PaperlessBilling": snake["paperless_billing"],
        "PaymentMethod": snake["payment_method"],
        "MonthlyCharges": snake["monthly_charges"],
        "TotalCharges": str(snake["total_charges"]),
    }
    a = client.post("/predict", json=snake).json()["churn_probability"]
    b = client.post("/predict", json=telco).json()["churn_probability"]
    assert a == b


def test_blank_total_charges_is_a_new_customer(client: TestClient, predictor: Predictor) -> None:
    body = customer(total_charges="", tenure=0)
    response = client.post("/predict", json=body)
    assert response.status_code == 200
    assert response.json()["churn_probability"] == pytest.approx(
        predictor.predict_one(customer(total_charges=None, tenure=0)), abs=1e-12
    )


@pytest.mark.parametrize(
    ("changes", "field", "reason", "error_type"),
    [
        ({"tenure": 5000}, "tenure", "less than or equal to 1200", "out_of_range"),
        ({"tenure": -1}, "tenure", "greater than or equal to 0", "out_of_range"),
        ({"tenure": True}, "tenure", "not a boolean", "wrong_type"),
        ({"tenure": 10**400}, "tenure", "not a finite number", "not_finite"),  # overflows a double
        ({"tenure": "twelve"}, "tenure", "decimal digits", "wrong_type"),
        ({"tenure": "3.5"}, "tenure", "fractional part", "not_integer"),
        ({"tenure": " "}, "tenure", "blank", "missing_field"),
        ({"monthly_charges": "lots"}, "monthly_charges", "decimal digits", "wrong_type"),
        ({"monthly_charges": 10**400}, "monthly_charges", "not a finite number", "not_finite"),
        ({"total_charges": "inf"}, "total_charges", "finite number", "not_finite"),
        ({"event_time": 10**30}, "event_time", "datetime", "invalid_timestamp"),
        ({"gender": "Robot"}, "gender", "'Female' or 'Male'", "unknown_category"),
        ({"contract": None}, "contract", "Input should be", "unknown_category"),
        ({"customer_id": ""}, "customer_id", "at least 1 character", "empty_string"),
        ({"customer_id": ["x"]}, "customer_id", "must be a string", "wrong_type"),
        ({"customer_id": "a\x00b"}, "customer_id", "control or bidirectional", "invalid_characters"),
        ({"customer_id": "a\x1b[2Jb"}, "customer_id", "U+001B", "invalid_characters"),
        ({"customer_id": "evil\u202etxt.exe"}, "customer_id", "U+202E", "invalid_characters"),
        ({"event_id": "e\u2066-1"}, "event_id", "U+2066", "invalid_characters"),
        ({"event_id": "e" * 129}, "event_id", "at most 128", "too_long"),
        ({"senior_citizen": 2}, "senior_citizen", "less than or equal to 1", "out_of_range"),
        ({"event_time": "yesterday"}, "event_time", "datetime", "invalid_timestamp"),
        (
            {"event_time": "2999-01-01T00:00:00Z"},
            "event_time",
            "ahead of the scorer clock",
            "event_from_future",
        ),
        ({"schema_version": 99}, "schema_version", "newer", "unsupported_schema_version"),
    ],
)
def test_invalid_fields_are_422_with_field_reason_and_the_streams_type(
    client: TestClient, changes: dict[str, Any], field: str, reason: str, error_type: str
) -> None:
    response = client.post("/predict", json=customer(**changes))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_error"
    assert [e["field"] for e in body["errors"]] == [field]
    assert reason in body["errors"][0]["reason"]
    assert body["errors"][0]["type"] == error_type


@pytest.mark.parametrize("repeated", [b',"tenure":5', b',"customerID":"other"', b',"customer_id":"x"'])
def test_a_repeated_key_is_422_naming_it(client: TestClient, repeated: bytes) -> None:
    """The body is ambiguous (which value wins?): refused as the stream dead-letters it."""
    import json

    raw = json.dumps(customer()).encode()[:-1] + repeated + b"}"
    response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    if repeated.startswith(b',"customerID"'):  # a different key: the snake_case name wins
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["type"] == "duplicate_keys"
    assert error["field"] == repeated.split(b'"')[1].decode()


def test_a_csv_row_as_json_is_scored(client: TestClient) -> None:
    """What csv.DictReader yields for a telco export: telco names, text values, no id or time."""
    from schemas.features import TELCO_ALIASES

    body = customer()
    row = {TELCO_ALIASES[k]: "" if v is None else str(v) for k, v in body.items()} | {"Churn": "No"}
    snake = client.post("/predict", json=body).json()
    text = client.post("/predict", json=row).json()
    assert text["churn_probability"] == snake["churn_probability"]
    assert len(text["event_id"]) == 32


def test_a_byte_order_mark_is_ignored(client: TestClient) -> None:
    import json

    raw = b"\xef\xbb\xbf" + json.dumps(customer()).encode()
    response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text


def test_missing_fields_are_all_listed(client: TestClient) -> None:
    body = customer()
    del body["tenure"], body["contract"]
    errors = client.post("/predict", json=body).json()["errors"]
    assert {(e["field"], e["type"]) for e in errors} == {
        ("tenure", "missing_field"),
        ("contract", "missing_field"),
    }


@pytest.mark.parametrize(
    "raw",
    [
        b'{"tenure": NaN}',
        b'{"tenure": Infinity}',
        b"[]",
        b'"a string"',
        b"null",
        b"42",
    ],
)
def test_non_object_or_non_finite_json_is_422(client: TestClient, raw: bytes) -> None:
    response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_non_finite_numbers_are_rejected(client: TestClient, literal: str) -> None:
    import json

    text = json.dumps(customer(monthly_charges="@")).replace('"@"', literal)
    response = client.post("/predict", content=text.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["monthly_charges"]


@pytest.mark.parametrize(
    "raw", [b"{", b'{"a": 1,}', b"\xff\xfe\x00", b"[" * 5_000 + b"]" * 5_000, b"{'single': 'quotes'}"]
)
def test_malformed_json_is_400(store: Store, raw: bytes) -> None:
    with make_client(store.path) as client:  # default body limit: the deep nesting fits
        response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] in {"invalid_json", "not_utf8", "too_deep"}
    assert body["errors"][0]["type"] == body["error"]


def test_a_body_over_the_event_limit_is_refused_as_the_stream_refuses_it(store: Store) -> None:
    with make_client(store.path, max_event_bytes=1024) as client:
        response = client.post("/predict", json=customer(note="x" * 2000))
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {"field": "body", "reason": response.json()["errors"][0]["reason"], "type": "oversize"}
    ]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(client: TestClient, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    import json

    response = client.post("/predict", content=json.dumps(customer()).encode(), headers=headers)
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_vendor_json_content_type_is_accepted(client: TestClient) -> None:
    import json

    response = client.post(
        "/predict",
        content=json.dumps(customer()).encode(),
        headers={"content-type": "application/vnd.churn+json; charset=utf-8"},
    )
    assert response.status_code == 200


def test_missing_body_is_422(client: TestClient) -> None:
    response = client.post("/predict", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["message"] == "a JSON body is required"


def test_body_over_the_limit_is_413(client: TestClient) -> None:
    body = customer(padding="x" * 5000)  # unknown fields are ignored, but the bytes count
    response = client.post("/predict", json=body)
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


def test_chunked_body_over_the_limit_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"padding": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    response = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


def _body_of(size: int) -> bytes:
    """A valid customer padded with an ignored field to exactly ``size`` bytes of JSON."""
    import json

    bare = len(json.dumps(customer(padding="")).encode())
    body = json.dumps(customer(padding="x" * (size - bare))).encode()
    assert len(body) == size
    return body


def test_a_body_exactly_at_the_limit_is_scored_and_one_byte_more_is_413(client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    assert client.post("/predict", content=_body_of(4096), headers=headers).status_code == 200
    over = client.post("/predict", content=_body_of(4097), headers=headers)
    assert over.status_code == 413
    assert over.json()["message"] == "the body is larger than 4096 bytes"

    def chunks(body: bytes) -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield from (body[i : i + 1000] for i in range(0, len(body), 1000))

    assert client.post("/predict", content=chunks(_body_of(4096)), headers=headers).status_code == 200
    chunked_over = client.post("/predict", content=chunks(_body_of(4097)), headers=headers)
    assert chunked_over.status_code == 413


def test_a_content_length_that_is_not_a_number_is_400(client: TestClient) -> None:
    response = client.post(
        "/predict", content=b"{}", headers={"content-type": "application/json", "content-length": "2x"}
    )
    assert response.status_code == 400
    assert response.json()["message"] == "Content-Length is not a number"


def test_media_types_are_compared_without_case_or_parameters(client: TestClient) -> None:
    import json

    body = json.dumps(customer()).encode()
    for media in ("Application/JSON", " application/json ; charset=utf-8", "application/problem+json"):
        response = client.post("/predict", content=body, headers={"content-type": media})
        assert response.status_code == 200, media


def test_an_empty_post_is_told_its_body_is_missing_whatever_its_type(client: TestClient) -> None:
    response = client.post("/predict", headers={"content-length": "0"})
    assert response.status_code == 422
    assert response.json()["message"] == "a JSON body is required"


# ---------------------------------------------------------------- /predict/batch
def test_batch_scores_in_order(client: TestClient, predictor: Predictor, store: Store) -> None:
    rows = records(5, seed=3)
    response = client.post("/predict/batch", json=rows)
    assert response.status_code == 200
    data = response.json()
    assert data["count"] == 5
    assert data["model_version"] == store.v1
    assert [p["customer_id"] for p in data["predictions"]] == [r["customer_id"] for r in rows]
    expected = predictor.predict_batch(rows)
    for prediction, probability in zip(data["predictions"], expected, strict=True):
        ChurnPrediction.model_validate(prediction)
        assert abs(prediction["churn_probability"] - probability) < 1e-12


def test_batch_over_the_limit_is_422(client: TestClient) -> None:
    response = client.post("/predict/batch", json=records(6))
    assert response.status_code == 422
    assert "at most 5 items" in response.json()["errors"][0]["reason"]


def test_empty_batch_is_422(client: TestClient) -> None:
    assert client.post("/predict/batch", json=[]).status_code == 422


def test_batch_errors_name_the_record_index(client: TestClient) -> None:
    rows = records(4)
    rows[2]["tenure"] = 5000
    errors = client.post("/predict/batch", json=rows).json()["errors"]
    assert [e["field"] for e in errors] == ["2.tenure"]


def test_batch_of_an_object_is_422(client: TestClient) -> None:
    assert client.post("/predict/batch", json=customer()).status_code == 422


# ------------------------------------------------------------- no model loaded
@pytest.fixture(scope="module")
def empty_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with make_client(tmp_path_factory.mktemp("empty")) as c:
        yield c


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [("POST", "/predict", customer()), ("POST", "/predict/batch", [customer()]), ("GET", "/model", None)],
)
def test_without_a_model_scoring_is_503(
    empty_client: TestClient, method: str, path: str, payload: Any
) -> None:
    response = empty_client.request(method, path, json=payload)
    assert response.status_code == 503
    assert response.json()["error"] == "no_model"
    assert response.headers["retry-after"] == "5"


def test_without_a_model_not_ready_but_alive(empty_client: TestClient) -> None:
    assert empty_client.get("/health/live").json() == {"status": "alive"}
    ready = empty_client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["error"] == "not_ready"
    health = empty_client.get("/health").json()
    assert health["status"] == "no_model"
    assert health["model_loaded"] is False
    assert health["model_version"] is None


def test_bad_input_is_still_422_without_a_model(empty_client: TestClient) -> None:
    assert empty_client.post("/predict", json={"tenure": 1}).status_code == 422


# ------------------------------------------------------------ the other routes
def test_health_routes(client: TestClient, store: Store) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["model_loaded"] is True
    assert health["model_version"] == store.v1
    assert health["uptime_s"] >= 0
    assert client.get("/health/live").json() == {"status": "alive"}
    assert client.get("/health/ready").json() == {"status": "ready", "model_version": store.v1}


def test_model_summary(client: TestClient, store: Store) -> None:
    data = client.get("/model").json()
    manifest = store.registry.manifest(store.v1)
    assert data["version"] == store.v1
    assert data["selected_model"] == manifest["selected_model"] == "spline_logistic"
    assert data["threshold"] == manifest["threshold"]
    assert data["created_at"] == manifest["created_at"]
    assert data["metrics"] == manifest["metrics"]
    assert data["features"] == manifest["features"]
    assert data["training_data"]["rows"] == 2000
    assert data["fast_path"] is True
    assert data["loaded_at"] is not None


def test_service_info(client: TestClient, store: Store) -> None:
    data = client.get("/").json()
    assert data["model_version"] == store.v1
    assert data["auth_required"] is False
    assert {"/predict", "/predict/batch", "/health", "/model", "/metrics"} <= set(data["endpoints"])


def test_docs_and_openapi(client: TestClient) -> None:
    assert "swagger" in client.get("/docs").text.lower()
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/predict", "/predict/batch", "/health/ready", "/model", "/admin/reload"} <= set(paths)
    schema = paths["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/CustomerEvent")


def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    wrong = client.get("/predict")
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "method_not_allowed"


def test_metrics_count_requests_latency_and_probabilities(store: Store) -> None:
    with make_client(store.path) as client:
        for _ in range(3):
            assert client.post("/predict", json=customer()).status_code == 200
        client.post("/predict", json={"tenure": 1})
        client.post("/predict/batch", json=records(4))
        client.get("/no/such/route")
        text = client.get("/metrics").text
    assert metric_value(text, "churn_api_requests_total", route="/predict", method="POST", status="200") == 3
    assert metric_value(text, "churn_api_requests_total", route="/predict", method="POST", status="422") == 1
    assert metric_value(text, "churn_api_requests_total", route="unmatched", method="GET", status="404") == 1
    assert metric_value(text, "churn_api_request_latency_seconds_count", route="/predict") == 4
    assert metric_value(text, "churn_prediction_probability_count") == 3 + 4
    assert metric_value(text, "churn_model_info", version=store.v1, model="spline_logistic") == 1


def test_every_method_is_counted_under_its_name_and_others_as_other(store: Store) -> None:
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    with make_client(store.path) as client:
        for method in [*methods, "PURGE"]:
            client.request(method, "/model")
        text = client.get("/metrics").text
    for method in methods:
        assert metric_value(text, "churn_api_requests_total", route="/model", method=method) == 1, method
    assert metric_value(text, "churn_api_requests_total", route="/model", method="other", status="405") == 1


def test_docs_assets_are_counted_under_their_folder(store: Store) -> None:
    with make_client(store.path) as client:
        assert client.get("/docs-assets/favicon.png").status_code == 200
        assert client.get("/docs-assets/no-such-file.js").status_code == 404
        assert client.get("/docs-assets-elsewhere").status_code == 404  # only a prefix, not the folder
        text = client.get("/metrics").text
    assert metric_value(text, "churn_api_requests_total", route="/docs-assets", status="200") == 1
    assert metric_value(text, "churn_api_requests_total", route="/docs-assets", status="404") == 1
    assert metric_value(text, "churn_api_requests_total", route="unmatched", status="404") == 1


def test_a_route_that_fails_is_counted_as_500(store: Store) -> None:
    app = create_app(Settings(model_store=store.path), poll=False)

    async def broken() -> None:
        raise RuntimeError("a bug in a route")

    app.add_api_route("/broken-for-test", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/broken-for-test").status_code == 500
        text = client.get("/metrics").text
    assert metric_value(text, "churn_api_requests_total", route="unmatched", method="GET", status="500") == 1


def test_no_bodies_or_customer_ids_in_logs(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    secret_id = "CUST-DO-NOT-LOG-42"
    with make_client(store.path) as client:
        client.post("/predict", json=customer(customer_id=secret_id))
        client.post("/predict", json=customer(customer_id=secret_id, tenure=500))
        client.post("/predict/batch", json=[customer(customer_id=secret_id)])
    assert secret_id not in caplog.text
    assert "Month-to-month" not in caplog.text


def test_cors_preflight_for_a_configured_origin(store: Store) -> None:
    with make_client(store.path, api_cors_origins=["https://app.example"], api_key="k" * 32) as client:
        allowed = client.options(
            "/predict",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        )
        denied = client.options(
            "/predict",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        simple = client.get("/health", headers={"Origin": "https://app.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
    assert denied.status_code == 400
    assert simple.headers["access-control-allow-origin"] == "https://app.example"


def test_no_cors_headers_by_default(client: TestClient) -> None:
    response = client.get("/health", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in response.headers


def test_booleans_are_accepted_for_flags_as_documented(client: TestClient) -> None:
    as_text = client.post("/predict", json=customer(senior_citizen=1, partner="Yes")).json()
    as_bool = client.post("/predict", json=customer(senior_citizen=True, partner=True)).json()
    assert as_bool["churn_probability"] == as_text["churn_probability"]
    schema = client.get("/openapi.json").json()["components"]["schemas"]["CustomerEvent"]
    assert {"type": "boolean"} in schema["properties"]["partner"]["anyOf"]
    assert {"type": "boolean"} in schema["properties"]["senior_citizen"]["anyOf"]


@pytest.mark.parametrize("blank", [" ", "\t", "\u0085", "\u3000"])
def test_blank_ids_are_rejected_and_documented(client: TestClient, blank: str) -> None:
    import re

    response = client.post("/predict", json=customer(customer_id=blank))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "customer_id"
    pattern = client.get("/openapi.json").json()["components"]["schemas"]["CustomerEvent"]["properties"][
        "customer_id"
    ]["pattern"]
    assert re.search(pattern, blank) is None
    if blank in (" ", "\u3000"):  # whitespace that is no control character may pad an id
        assert re.search(pattern, f"{blank}x{blank}") is not None
