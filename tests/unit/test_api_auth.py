"""The X-API-Key check: which routes it guards, 401 vs 403, and the OpenAPI description."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from config.settings import Settings
from tests.support.api_support import Store, customer, store_copy

KEY = "s3cret-key-ü"  # non-ASCII on purpose: compared as bytes, never crashes


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    store: Store = store_copy(tmp_path_factory)
    app = create_app(Settings(model_store=store.path, api_key="s3cret-key"), poll=False)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


GUARDED = [
    ("POST", "/predict"),
    ("POST", "/predict/batch"),
    ("GET", "/model"),
    ("POST", "/admin/reload"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    ("GET", "/no/such/route"),
]
PUBLIC = ["/", "/health", "/health/live", "/health/ready", "/metrics"]


@pytest.mark.parametrize(("method", "path"), GUARDED)
def test_guarded_routes_need_the_key(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path, json=customer() if method == "POST" else None)
    assert response.status_code == 401
    assert response.json()["error"] == "missing_api_key"
    assert response.headers["www-authenticate"] == "X-API-Key"


@pytest.mark.parametrize(("method", "path"), GUARDED)
@pytest.mark.parametrize("wrong", ["nope", "s3cret-ke", "s3cret-key ", ""])
def test_a_wrong_key_is_403(client: TestClient, method: str, path: str, wrong: str) -> None:
    response = client.request(method, path, headers={"X-API-Key": wrong})
    assert response.status_code == 403
    assert response.json()["error"] == "invalid_api_key"


def test_a_non_ascii_key_is_403_not_500(client: TestClient) -> None:
    response = client.post("/predict", headers={"X-API-Key": KEY.encode()})  # type: ignore[dict-item]
    assert response.status_code == 403


@pytest.mark.parametrize("path", PUBLIC)
def test_public_routes_need_no_key(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


def test_the_right_key_opens_every_route(client: TestClient) -> None:
    headers = {"X-API-Key": "s3cret-key"}
    assert client.post("/predict", json=customer(), headers=headers).status_code == 200
    assert client.post("/predict/batch", json=[customer()], headers=headers).status_code == 200
    assert client.get("/model", headers=headers).status_code == 200
    assert client.post("/admin/reload", headers=headers).status_code == 200
    assert client.get("/docs", headers=headers).status_code == 200
    assert client.get("/no/such/route", headers=headers).status_code == 404


def test_the_key_check_comes_before_validation(client: TestClient) -> None:
    assert client.post("/predict", json={"junk": 1}).status_code == 401


def test_openapi_documents_the_key(client: TestClient) -> None:
    schema = client.get("/openapi.json", headers={"X-API-Key": "s3cret-key"}).json()
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    assert schema["security"] == [{"ApiKey": []}]
    assert schema["paths"]["/health"]["get"]["security"] == []
    assert "security" not in schema["paths"]["/predict"]["post"]


def test_service_info_says_auth_is_required(client: TestClient) -> None:
    assert client.get("/").json()["auth_required"] is True
