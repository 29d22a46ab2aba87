"""API hardening: the per-client rate limit (429 + Retry-After) and the request timeout (504)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.app import create_app
from config.settings import Settings
from tests.support.api_support import Store, customer, store_copy

KEY = "limit-test-key-0123456789abcdefghijklmnop"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return store_copy(tmp_path_factory)


@contextmanager
def clients(app: Any, *addresses: str) -> Iterator[list[TestClient]]:
    """One TestClient per client address, all on the same app (one lifespan)."""
    with TestClient(app, client=(addresses[0], 40000)) as first:
        others = [TestClient(app, client=(a, 40000)) for a in addresses[1:]]
        yield [first, *others]


def _assert_429(response: Any, limit: str) -> None:
    assert response.status_code == 429
    body = response.json()
    assert body["error"] == "rate_limited"
    assert limit in body["message"]
    assert 1 <= int(response.headers["retry-after"]) <= 60


def test_per_address_limit_is_429_with_retry_after(store: Store) -> None:
    app = create_app(Settings(model_store=store.path, api_rate_limit="5/minute"), poll=False)
    with clients(app, "10.0.0.1", "10.0.0.2") as (a, b):
        for _ in range(5):
            assert a.post("/predict", json=customer()).status_code == 200
        _assert_429(a.post("/predict", json=customer()), "5/minute")
        _assert_429(a.get("/model"), "5/minute")  # one budget per client, every limited route
        # Another address has its own budget.
        assert b.post("/predict", json=customer()).status_code == 200
        # Probes and Prometheus are never limited.
        for path in ("/health", "/health/live", "/health/ready", "/metrics"):
            assert a.get(path).status_code == 200, path
        metrics = a.get("/metrics").text
        assert 'status="429"' in metrics


def test_per_key_limit_counts_each_key_name_not_each_address(store: Store, tmp_path: Path) -> None:
    settings = Settings(
        model_store=store.path, api_key=KEY, api_rate_limit="3/minute", api_rate_limit_by="key"
    )
    app = create_app(settings, poll=False)
    headers = {"X-API-Key": KEY}
    with clients(app, "10.0.0.1", "10.0.0.2") as (a, b):
        # The same key from two addresses shares one budget.
        assert a.post("/predict", json=customer(), headers=headers).status_code == 200
        assert b.post("/predict", json=customer(), headers=headers).status_code == 200
        assert a.post("/predict", json=customer(), headers=headers).status_code == 200
        _assert_429(b.post("/predict", json=customer(), headers=headers), "3/minute")
        # Wrong keys are refused by the key check (403), before any limit is counted.
        assert a.post("/predict", json=customer(), headers={"X-API-Key": "x"}).status_code == 403
    # Keys from the keys file are counted by their name, each with a budget of its own.
    other = "o" * 40
    keys = tmp_path / "keys"
    keys.write_text(f"billing predict {KEY}\nreports predict {other}\n")
    settings = Settings(
        model_store=store.path, api_keys_file=keys, api_rate_limit="2/minute", api_rate_limit_by="key"
    )
    with clients(create_app(settings, poll=False), "10.0.0.1") as (a,):
        assert [a.get("/model", headers={"X-API-Key": KEY}).status_code for _ in range(3)] == [200, 200, 429]
        assert a.get("/model", headers={"X-API-Key": other}).status_code == 200


def test_random_keys_never_open_fresh_budgets(store: Store) -> None:
    """The finding: with by=key and no key configured, each random X-API-Key got a fresh bucket.
    Now by=key needs keys (tests/unit/test_api_auth.py), and wrong keys are refused and throttled."""
    settings = Settings(
        model_store=store.path,
        api_key=KEY,
        api_rate_limit="3/minute",
        api_rate_limit_by="key",
        api_auth_failure_limit="5/minute",
    )
    with clients(create_app(settings, poll=False), "10.0.0.9") as (a,):
        statuses = [
            a.post("/predict", json=customer(), headers={"X-API-Key": f"random-{i:04d}" * 4}).status_code
            for i in range(8)
        ]
    assert statuses == [403] * 5 + [429] * 3


def test_no_limit_by_default(store: Store) -> None:
    settings = Settings(model_store=store.path)
    assert settings.api_rate_limit is None
    with TestClient(create_app(settings, poll=False)) as client:
        statuses = {client.post("/predict", json=customer()).status_code for _ in range(200)}
    assert statuses == {200}


@pytest.mark.parametrize("bad", ["lots", "100/fortnight", "-1/second"])
def test_a_malformed_limit_is_refused_at_start(bad: str) -> None:
    with pytest.raises(ValidationError, match="not a rate limit"):
        Settings(api_rate_limit=bad)


def test_a_request_over_the_timeout_is_504(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    # 1 s, not less: the fast request below must stay under it on a loaded machine (mutation runs)
    app = create_app(Settings(model_store=store.path, api_request_timeout_s=1.0), poll=False)

    async def slow() -> dict[str, str]:
        await asyncio.sleep(10)
        return {"late": "yes"}

    async def own_timeout() -> None:
        raise TimeoutError("an upstream the route called")

    app.add_api_route("/slow-for-test", slow)
    app.add_api_route("/own-timeout-for-test", own_timeout)
    with (
        TestClient(app, raise_server_exceptions=False) as client,
        caplog.at_level("WARNING", "api.middleware"),
    ):
        response = client.get("/slow-for-test")
        assert response.status_code == 504
        assert response.json()["error"] == "request_timeout"
        assert response.json()["message"] == "the request took longer than 1 s"
        assert "request_timeout path=/slow-for-test after_s=1.0 key=-" in caplog.text
        # Fast requests are untouched.
        assert client.post("/predict", json=customer()).status_code == 200
        # A TimeoutError the route raises itself is a failure of the route, not the timeout.
        assert client.get("/own-timeout-for-test").status_code == 500
    assert caplog.text.count("request_timeout") == 1


def test_timeout_can_be_disabled(store: Store) -> None:
    app = create_app(Settings(model_store=store.path, api_request_timeout_s=0), poll=False)

    async def slowish() -> dict[str, str]:
        await asyncio.sleep(0.3)
        return {"done": "yes"}

    app.add_api_route("/slowish-for-test", slowish)
    with TestClient(app) as client:
        assert client.get("/slowish-for-test").json() == {"done": "yes"}
        assert client.post("/predict", json=customer()).status_code == 200  # the route reads its body
