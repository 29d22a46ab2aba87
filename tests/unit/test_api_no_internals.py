"""No internals in answers: no filesystem path, stack trace or artifact hash in any response body.

Every test module named ``test_api*`` is scanned response by response (``tests/conftest.py``,
``tests/support/internals.py``); the tests here provoke the answers that used to leak — the
training CSV's path in ``/model``, absolute paths and sha256 prefixes in ``/admin/reload``'s 409 —
and every other error status, and check the scanner itself.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from config.settings import Settings
from models.registry import MANIFEST_FILE, MODEL_FILE, sha256_file
from tests.support.api_support import Store, customer, store_copy, tamper
from tests.support.internals import leaks


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return store_copy(tmp_path_factory)


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    app = create_app(Settings(model_store=store.path, api_max_body_bytes=2048), poll=False)

    async def explode() -> None:
        raise RuntimeError(f"cannot open {store.path}/secret/file.txt")

    app.add_api_route("/explode-for-test", explode)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def point_current_at(store: Store, version: str) -> None:
    (store.path / "CURRENT").write_text(version + "\n")


def test_model_names_the_training_file_not_its_path(store: Store) -> None:
    manifest_path = store.path / store.v1 / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["training_data"]["source"] = "/srv/data/customers/WA_Fn-UseC_-Telco-Customer-Churn.csv"
    manifest_path.write_text(json.dumps(manifest))
    with TestClient(create_app(Settings(model_store=store.path), poll=False)) as client:
        body = client.get("/model").json()
    assert body["training_data"]["source"] == "WA_Fn-UseC_-Telco-Customer-Churn.csv"
    assert body["training_data"]["rows"] == manifest["training_data"]["rows"]


def _missing(store: Store, version: str) -> None:
    (store.path / version / MODEL_FILE).unlink()


def _tampered(store: Store, version: str) -> None:
    tamper(store.path / version / MODEL_FILE)


def _outside_entry(store: Store, version: str) -> None:
    path = store.path / version / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    outside = store.path.parent / "hostname"
    outside.write_text("host\n")
    manifest["sha256"]["../../hostname"] = sha256_file(outside)
    path.write_text(json.dumps(manifest))


def _not_skops(store: Store, version: str) -> None:
    model = store.path / version / MODEL_FILE
    model.write_bytes(b"PK\x03\x04 not really a zip")
    path = store.path / version / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["sha256"][MODEL_FILE] = sha256_file(model)
    path.write_text(json.dumps(manifest))


def _linked_folder(store: Store, version: str) -> None:
    real = store.path.parent / "elsewhere"
    shutil.move(store.path / version, real)
    os.symlink(real, store.path / version)


@pytest.mark.parametrize("breakage", [_missing, _tampered, _outside_entry, _not_skops, _linked_folder])
def test_a_refused_reload_says_why_without_paths_or_hashes(
    store: Store, client: TestClient, breakage: object
) -> None:
    breakage(store, store.v2)  # type: ignore[operator]
    point_current_at(store, store.v2)
    response = client.post("/admin/reload")
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "model_refused"
    assert body["message"].startswith(f"the promoted version was refused: version {store.v2}: ")
    assert body["serving"] == store.v1 and body["fallback"] is True
    assert str(store.path) not in response.text
    assert not leaks(response.text, digests=set(), extra_paths=[str(store.path.parent)])


def test_every_error_status_answers_without_internals(client: TestClient) -> None:
    cases = [
        (client.post("/predict", content=b"{nope", headers={"content-type": "application/json"}), 400),
        (client.get("/no/such/route"), 404),
        (client.delete("/predict"), 405),
        (client.post("/predict", content=b"x" * 5000, headers={"content-type": "application/json"}), 413),
        (client.post("/predict", content=b"{}", headers={"content-type": "text/plain"}), 415),
        (client.post("/predict", json={**customer(), "tenure": -1}), 422),
        (client.get("/explode-for-test"), 500),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert "Traceback" not in response.text
        assert "secret/file.txt" not in response.text


def test_the_scanner_finds_what_it_looks_for(store: Store) -> None:
    digest = sha256_file(store.path / store.v1 / MODEL_FILE)
    digests = {digest[:10]}
    assert leaks("cannot read /tmp/pytest-of-x/store/v1/model.skops", set())
    assert leaks('Traceback (most recent call last):\n  File "/app/x.py"', set())
    assert leaks(f"sha256 mismatch (manifest {digest[:12]}...)", set())
    assert leaks(f'{{"detail": "{digest}"}}', digests)
    assert leaks(r"C:\\store\\v1", set())
    # and what is not internal
    assert not leaks(
        '{"endpoints": ["/predict", "/predict/batch", "/admin/reload", "/health/ready"]}', digests
    )
    assert not leaks(f'{{"event_id": "{uuid.uuid4().hex}", "model_version": "{store.v1}"}}', digests)
    assert not leaks(
        '<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js">', digests
    )
