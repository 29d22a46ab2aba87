"""Hot reload while requests are in flight: no failed request, no mixed answers, bad artifacts refused."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api.app import create_app
from config.settings import Settings
from models.predictor import Predictor
from models.registry import MODEL_FILE
from tests.support.api_support import Store, customer, records, store_copy, tamper

CLIENTS = 8


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return store_copy(tmp_path_factory)


@pytest.fixture
def expected(store: Store) -> dict[str, dict[str, float]]:
    """Per version, the probability each test customer must get from that version."""
    out = {}
    for version in (store.v1, store.v2):
        predictor = Predictor.from_registry(store.registry, version)
        out[version] = {r["customer_id"]: predictor.predict_one(r) for r in BODIES}
    return out


BODIES = records(16, seed=21)


@contextlib.asynccontextmanager
async def running(store: Store, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (model load, registry poll) and an in-process HTTP client."""
    app = create_app(Settings(model_store=store.path, **settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


def point_current_at(store: Store, version: str) -> None:
    """Move the CURRENT pointer without the registry's verification (as a bad deploy would)."""
    tmp = store.path / ".CURRENT.tmp"
    tmp.write_text(version + "\n")
    os.replace(tmp, store.path / "CURRENT")


async def _hammer(client: httpx.AsyncClient, stop: asyncio.Event, seen: list[tuple[int, Any]]) -> None:
    i = 0
    while not stop.is_set():
        body = BODIES[i % len(BODIES)]
        i += 1
        response = await client.post("/predict", json=body)
        seen.append((response.status_code, response.json()))
        await asyncio.sleep(0)


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def _check_answers(results: list[list[tuple[int, Any]]], expected: dict[str, dict[str, float]]) -> None:
    """Every answer is 200 and internally consistent."""
    for answers in results:
        assert answers, "a client got no answer at all"
        for status, data in answers:
            assert status == 200, data
            # the probability is the one of the version the answer names: no half-swapped request
            want = expected[data["model_version"]][data["customer_id"]]
            assert abs(data["churn_probability"] - want) < 1e-12


async def _reload_under_load(
    store: Store, expected: dict[str, dict[str, float]], trigger: str, broken: bool
) -> tuple[list[str], list[str], dict[str, Any]]:
    # with the admin trigger the poll is slowed down, so the admin call is what reloads
    poll_interval = 3600.0 if trigger == "admin" else 0.05
    async with running(store, model_poll_interval_s=poll_interval) as client:
        stop = asyncio.Event()
        results: list[list[tuple[int, Any]]] = [[] for _ in range(CLIENTS)]
        tasks = [asyncio.create_task(_hammer(client, stop, results[i])) for i in range(CLIENTS)]
        await _until(lambda: all(len(r) > 20 for r in results))
        if broken:  # promoted, then the artifact got corrupted on disk
            tamper(store.path / store.v2 / MODEL_FILE)
            point_current_at(store, store.v2)
        else:
            await asyncio.to_thread(store.registry.promote, store.v2)
        reload_answer: dict[str, Any] = {}
        if trigger == "admin":
            response = await client.post("/admin/reload")
            reload_answer = {"http_status": response.status_code, **response.json()}
            await asyncio.sleep(0.3)
        elif broken:
            await asyncio.sleep(0.5)  # several polls
        else:
            await _until(lambda: all(r and r[-1][1]["model_version"] == store.v2 for r in results))
            await asyncio.sleep(0.2)
        stop.set()
        await asyncio.gather(*tasks)
        health = (await client.get("/health")).json()
        metrics = (await client.get("/metrics")).text
        reload_answer["health"] = health
        reload_answer["metrics"] = metrics
        per_client = [[d["model_version"] for _, d in r] for r in results]
        _check_answers(results, expected)
        return [v for r in per_client for v in r], [r[-1] for r in per_client], reload_answer


@pytest.mark.parametrize("trigger", ["poll", "admin"])
def test_reload_under_concurrent_requests_fails_nothing(
    store: Store, expected: dict[str, dict[str, float]], trigger: str
) -> None:
    every, last, answer = asyncio.run(_reload_under_load(store, expected, trigger, broken=False))
    assert set(every) == {store.v1, store.v2}  # both models answered during the run
    assert set(last) == {store.v2}  # and every client ends on the new one
    assert answer["health"]["model_version"] == store.v2
    if trigger == "admin":
        assert answer["http_status"] == 200
        assert answer["serving"] == store.v2


def test_once_swapped_a_client_never_sees_the_old_model(
    store: Store, expected: dict[str, dict[str, float]]
) -> None:
    async def run() -> list[list[str]]:
        async with running(store, model_poll_interval_s=0.05) as client:
            stop = asyncio.Event()
            results: list[list[tuple[int, Any]]] = [[] for _ in range(CLIENTS)]
            tasks = [asyncio.create_task(_hammer(client, stop, results[i])) for i in range(CLIENTS)]
            await asyncio.sleep(0.1)
            await asyncio.to_thread(store.registry.promote, store.v2)
            await _until(lambda: all(r and r[-1][1]["model_version"] == store.v2 for r in results))
            await asyncio.sleep(0.1)
            stop.set()
            await asyncio.gather(*tasks)
            return [[d["model_version"] for _, d in r] for r in results]

    for versions in asyncio.run(run()):
        first_new = versions.index(store.v2)
        assert set(versions[first_new:]) == {store.v2}
        assert set(versions[:first_new]) <= {store.v1}


@pytest.mark.parametrize("trigger", ["poll", "admin"])
def test_a_tampered_artifact_is_refused_and_the_old_model_keeps_serving(
    store: Store, expected: dict[str, dict[str, float]], trigger: str
) -> None:
    every, _, answer = asyncio.run(_reload_under_load(store, expected, trigger, broken=True))
    assert set(every) == {store.v1}
    assert answer["health"]["model_version"] == store.v1
    # refused once, not retried on every poll
    assert "churn_model_reload_failures_total 1.0" in answer["metrics"]
    if trigger == "admin":
        assert answer["http_status"] == 409
        assert answer["error"] == "model_refused"
        assert "sha256 mismatch" in answer["message"]
        assert answer["serving"] == store.v1


def test_a_store_promoted_after_start_is_picked_up(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Start with nothing promoted: 503, then the first promotion makes the service ready."""
    store = store_copy(tmp_path_factory)
    (store.path / "CURRENT").unlink()

    async def run() -> tuple[int, int, str]:
        async with running(store, model_poll_interval_s=0.05) as client:
            before = (await client.post("/predict", json=customer())).status_code
            await asyncio.to_thread(store.registry.promote, store.v1)
            for _ in range(500):
                if (await client.get("/health/ready")).status_code == 200:
                    break
                await asyncio.sleep(0.01)
            after = await client.post("/predict", json=customer())
            return before, after.status_code, after.json()["model_version"]

    before, after, version = asyncio.run(run())
    assert (before, after, version) == (503, 200, store.v1)
