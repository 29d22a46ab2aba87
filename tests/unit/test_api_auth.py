"""API keys: which routes they guard, 401 vs 403, scopes, the keys file and its rotation, the
throttle of addresses that keep sending wrong keys, and the OpenAPI description."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.auth import KeyConfigError, KeyStore, parse_keys_file
from config.settings import Settings
from tests.support.api_support import Store, customer, store_copy

KEY = "s3cret-key-for-the-tests-0123456789abcdef"  # 42 characters
PREDICT_KEY = "p" * 40
ADMIN_KEY = "a" * 40
BOTH_KEY = "b" * 40
NON_ASCII = "s3cret-key-ü-for-the-tests-0123456789"  # non-ASCII on purpose: compared as bytes


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return store_copy(tmp_path_factory)


@pytest.fixture(scope="module")
def client(store: Store) -> Iterator[TestClient]:
    # many wrong keys from one test address below: the failure throttle has its own tests
    settings = Settings(model_store=store.path, api_key=KEY, api_auth_failure_limit=None)
    with TestClient(create_app(settings, poll=False), raise_server_exceptions=False) as c:
        yield c


def keys_file(path: Path, *lines: str) -> Path:
    path.write_text("# name scopes key\n" + "\n".join(lines) + "\n")
    return path


def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


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
@pytest.mark.parametrize("wrong", ["nope", KEY[:-1], KEY + " ", ""])
def test_a_wrong_key_is_403(client: TestClient, method: str, path: str, wrong: str) -> None:
    response = client.request(method, path, headers={"X-API-Key": wrong})
    assert response.status_code == 403
    assert response.json()["error"] == "invalid_api_key"


def test_a_non_ascii_key_is_403_not_500(client: TestClient) -> None:
    response = client.post("/predict", headers={"X-API-Key": NON_ASCII.encode()})  # type: ignore[dict-item]
    assert response.status_code == 403


@pytest.mark.parametrize("path", PUBLIC)
def test_public_routes_need_no_key(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


def test_the_right_key_opens_every_route(client: TestClient) -> None:
    headers = {"X-API-Key": KEY}
    assert client.post("/predict", json=customer(), headers=headers).status_code == 200
    assert client.post("/predict/batch", json=[customer()], headers=headers).status_code == 200
    assert client.get("/model", headers=headers).status_code == 200
    assert client.post("/admin/reload", headers=headers).status_code == 200
    assert client.get("/docs", headers=headers).status_code == 200
    assert client.get("/no/such/route", headers=headers).status_code == 404


def test_the_key_check_comes_before_validation(client: TestClient) -> None:
    assert client.post("/predict", json={"junk": 1}).status_code == 401


def test_openapi_documents_the_key(client: TestClient) -> None:
    schema = client.get("/openapi.json", headers={"X-API-Key": KEY}).json()
    scheme = schema["components"]["securitySchemes"]["ApiKey"]
    assert {k: scheme[k] for k in ("type", "in", "name")} == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    assert "admin scope" in scheme["description"]
    assert schema["security"] == [{"ApiKey": []}]
    assert schema["paths"]["/health"]["get"]["security"] == []
    assert "security" not in schema["paths"]["/predict"]["post"]


def test_service_info_says_auth_is_required(client: TestClient) -> None:
    assert client.get("/").json()["auth_required"] is True


# --- scopes and the keys file -------------------------------------------------------------------
@pytest.fixture
def scoped(store: Store, tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    path = keys_file(
        tmp_path / "keys",
        f"billing  predict        {PREDICT_KEY}",
        f"ops      admin          {ADMIN_KEY}",
        f"both     predict,admin  {BOTH_KEY}  # a comment",
    )
    settings = Settings(model_store=store.path, api_keys_file=path, api_auth_failure_limit=None)
    with TestClient(create_app(settings, poll=False), raise_server_exceptions=False) as c:
        yield c, path


def test_admin_routes_need_the_admin_scope(scoped: tuple[TestClient, Path]) -> None:
    client, _ = scoped
    refused = client.post("/admin/reload", headers={"X-API-Key": PREDICT_KEY})
    assert refused.status_code == 403
    assert refused.json()["error"] == "insufficient_scope"
    assert "admin scope" in refused.json()["message"]
    assert client.post("/admin/reload", headers={"X-API-Key": ADMIN_KEY}).status_code == 200
    assert client.post("/admin/reload", headers={"X-API-Key": BOTH_KEY}).status_code == 200
    # and the other way round: an admin-only key does not score
    assert client.post("/predict", json=customer(), headers={"X-API-Key": ADMIN_KEY}).status_code == 403
    assert client.post("/predict", json=customer(), headers={"X-API-Key": PREDICT_KEY}).status_code == 200
    assert client.get("/model", headers={"X-API-Key": PREDICT_KEY}).status_code == 200
    assert (
        metric(client.get("/metrics").text, "churn_api_auth_failures_total", reason="insufficient_scope") == 2
    )


def test_the_single_env_key_has_both_scopes(client: TestClient) -> None:
    assert client.post("/admin/reload", headers={"X-API-Key": KEY}).status_code == 200


def test_keys_rotate_without_a_restart(scoped: tuple[TestClient, Path]) -> None:
    client, path = scoped
    new_key = "n" * 48
    assert client.post("/predict", json=customer(), headers={"X-API-Key": new_key}).status_code == 403
    tmp = path.with_suffix(".tmp")
    keys_file(tmp, f"billing predict {new_key}")  # PREDICT_KEY retired, a new key for billing
    os.replace(tmp, path)  # the way to rotate: write aside, rename over
    time.sleep(1.1)  # the file is looked at once a second
    assert client.post("/predict", json=customer(), headers={"X-API-Key": new_key}).status_code == 200
    assert client.post("/predict", json=customer(), headers={"X-API-Key": PREDICT_KEY}).status_code == 403


def test_a_broken_keys_file_keeps_the_keys_in_use(
    scoped: tuple[TestClient, Path], caplog: pytest.LogCaptureFixture
) -> None:
    client, path = scoped
    with caplog.at_level(logging.ERROR):
        path.write_text(f"billing predict short\nops admin {ADMIN_KEY}\n")
        time.sleep(1.1)
        response = client.post("/predict", json=customer(), headers={"X-API-Key": PREDICT_KEY})
    assert response.status_code == 200
    assert "api_keys_file_refused" in caplog.text
    assert "short" not in caplog.text.replace("is 5 characters", "")
    assert PREDICT_KEY not in caplog.text


def test_keys_never_reach_the_logs(scoped: tuple[TestClient, Path], caplog: pytest.LogCaptureFixture) -> None:
    client, _ = scoped
    with caplog.at_level(logging.DEBUG):
        client.post("/predict", json=customer(), headers={"X-API-Key": PREDICT_KEY})
        client.post("/admin/reload", headers={"X-API-Key": PREDICT_KEY})
        client.post("/admin/reload", headers={"X-API-Key": ADMIN_KEY})
        client.post("/predict", headers={"X-API-Key": "w" * 40})
    for secret in (PREDICT_KEY, ADMIN_KEY, "w" * 40):
        assert secret not in caplog.text
    # what an operator reads: which key lacked which scope, and where wrong keys come from
    assert "api_key_scope_refused key=billing path=/admin/reload needs=admin" in caplog.text
    assert "api_auth_failed reason=invalid_key client=testclient path=/predict" in caplog.text
    assert "admin_reload key=ops" in caplog.text


# --- start-up refusals --------------------------------------------------------------------------
@pytest.mark.parametrize("short", ["Q", "change-me", "k" * 31])
def test_a_short_key_stops_the_service_at_start(store: Store, short: str) -> None:
    with pytest.raises(
        KeyConfigError, match=f"CHURN_API_KEY: key 'default' is {len(short)} characters"
    ) as caught:
        create_app(Settings(model_store=store.path, api_key=short))
    assert short not in str(caught.value).replace("'default'", "")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["billing predict tooshort"], "line 2: key 'billing' is 8 characters long"),
        ([f"billing predict,root {PREDICT_KEY}"], "needs scopes among predict, admin"),
        ([f"billing {PREDICT_KEY}"], "line 2: expected `name scopes key`"),
        ([f"a predict {PREDICT_KEY}", f"a admin {ADMIN_KEY}"], "the key name 'a' is used twice"),
        ([f"a predict {PREDICT_KEY}", f"b admin {PREDICT_KEY}"], "same value as another key"),
        ([f"bad/name predict {PREDICT_KEY}"], "key name 'bad/name'"),
        (["# only a comment"], "lists no key"),
    ],
)
def test_a_bad_keys_file_stops_the_service_at_start(
    store: Store, tmp_path: Path, lines: list[str], message: str
) -> None:
    path = keys_file(tmp_path / "keys", *lines)
    with pytest.raises(KeyConfigError, match=message) as caught:
        create_app(Settings(model_store=store.path, api_keys_file=path))
    assert PREDICT_KEY not in str(caught.value)


def test_a_missing_keys_file_stops_the_service(store: Store, tmp_path: Path) -> None:
    with pytest.raises(KeyConfigError, match="CHURN_API_KEYS_FILE: cannot read"):
        create_app(Settings(model_store=store.path, api_keys_file=tmp_path / "nope"))


def test_rate_limit_by_key_needs_keys(store: Store) -> None:
    with pytest.raises(KeyConfigError, match="CHURN_API_RATE_LIMIT_BY=key needs API keys"):
        create_app(Settings(model_store=store.path, api_rate_limit="10/second", api_rate_limit_by="key"))


def test_the_env_key_and_a_file_key_may_not_share_a_value(store: Store, tmp_path: Path) -> None:
    path = keys_file(tmp_path / "keys", f"billing predict {KEY}")
    with pytest.raises(KeyConfigError, match="same value"):
        KeyStore.from_settings(Settings(api_key=KEY, api_keys_file=path))


def test_keys_are_kept_as_digests_only() -> None:
    (key,) = parse_keys_file(f"billing predict {PREDICT_KEY}\n", "test")
    assert PREDICT_KEY.encode() not in repr(key).encode()
    assert len(key.digest) == 32


# --- throttling addresses that keep failing -----------------------------------------------------
def test_ten_wrong_keys_from_one_address_get_429_then_even_the_right_key_waits(store: Store) -> None:
    settings = Settings(model_store=store.path, api_key=KEY, api_auth_failure_limit="10/minute")
    app = create_app(settings, poll=False)
    with (
        TestClient(app, client=("10.0.0.1", 40000)) as attacker,
        TestClient(app, client=("10.0.0.2", 40000)) as other,
    ):
        statuses = [
            attacker.post("/predict", json=customer(), headers={"X-API-Key": f"guess-{i}" * 6}).status_code
            for i in range(20)
        ]
        assert statuses == [403] * 10 + [429] * 10
        throttled = attacker.post("/predict", json=customer(), headers={"X-API-Key": KEY})
        assert throttled.status_code == 429
        assert throttled.json()["error"] == "too_many_auth_failures"
        assert 1 <= int(throttled.headers["retry-after"]) <= 60
        # another address is not affected, nor are the public routes
        assert other.post("/predict", json=customer(), headers={"X-API-Key": KEY}).status_code == 200
        assert attacker.get("/health").status_code == 200
        text = attacker.get("/metrics").text
    assert metric(text, "churn_api_auth_failures_total", reason="invalid_key") == 10
    assert metric(text, "churn_api_auth_failures_total", reason="throttled") == 11


def test_missing_keys_count_as_failures_too(store: Store) -> None:
    settings = Settings(model_store=store.path, api_key=KEY, api_auth_failure_limit="3/minute")
    with TestClient(create_app(settings, poll=False)) as client:
        statuses = [client.get("/model").status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
