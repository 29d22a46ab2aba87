"""The API as it really runs: `churn api` under uvicorn, spoken to over loopback HTTP."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.ports import free_port
from devstack.processes import ChurnProcess
from models.registry import ModelRegistry
from training.run import TrainConfig, train
from training.synthetic import generate

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    root = tmp_path_factory.mktemp("e2e-store")
    first = train(TrainConfig(store=root, candidates=["spline_logistic"], plots=False, rows=2000))
    second = train(
        TrainConfig(
            store=root, candidates=["spline_logistic"], plots=False, rows=2000, seed=99, promote=False
        )
    )
    return root, first.version, second.version


def customers(n: int) -> list[dict[str, Any]]:
    frame = generate(n, seed=8).drop(columns=["churn"])
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in frame.to_dict("records")
    ]


class Server:
    """``churn api`` in a subprocess; its output goes to a file (a full pipe would stall it)."""

    def __init__(self, store: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = store.parent / f"api-{self.port}.log"
        args = ["api", "--port", str(self.port), "--store", str(store), *extra]
        self.process = ChurnProcess(args, {**os.environ, **(env or {})}, self.log)
        deadline = time.monotonic() + 60
        while True:
            assert self.process.running(), self.log.read_text()
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API did not become ready"
            time.sleep(0.1)

    def stop(self) -> tuple[int | None, str]:
        code = self.process.stop(signal.SIGTERM, timeout=30)
        return code, self.log.read_text()


@pytest.fixture
def server(store: tuple[Path, str, str]) -> Iterator[Server]:
    running = Server(store[0], env={"CHURN_MODEL_POLL_INTERVAL_S": "0.2"})
    yield running
    if running.process.running():
        running.stop()


def test_predict_over_http_and_clean_shutdown(server: Server, store: tuple[Path, str, str]) -> None:
    rows = customers(20)
    with httpx.Client(base_url=server.url) as client:
        one = client.post("/predict", json=rows[0])
        batch = client.post("/predict/batch", json=rows)
        bad = client.post("/predict", json={**rows[0], "tenure": -3})
        garbage = client.post("/predict", content=b"{nope", headers={"content-type": "application/json"})
        health = client.get("/health").json()
        metrics = client.get("/metrics").text
    assert one.status_code == 200
    assert one.json()["model_version"] == store[1]
    assert batch.json()["count"] == 20
    assert batch.json()["predictions"][0]["churn_probability"] == pytest.approx(
        one.json()["churn_probability"], abs=1e-12
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "tenure"
    assert garbage.status_code == 400
    assert health["model_version"] == store[1]
    assert 'churn_api_requests_total{method="POST",route="/predict",status="200"} 1.0' in metrics
    code, output = server.stop()
    # uvicorn finishes a graceful shutdown, then re-raises SIGTERM so the exit status reports it
    assert code in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert rows[0]["customer_id"] not in output  # customer ids never reach the logs


def test_hot_reload_under_concurrent_http_load(server: Server, store: tuple[Path, str, str]) -> None:
    root, v1, v2 = store
    rows = customers(8)
    stop = threading.Event()
    answers: list[list[tuple[int, str]]] = [[] for _ in range(8)]
    failures: list[BaseException] = []

    def hammer(i: int) -> None:
        try:
            with httpx.Client(base_url=server.url, timeout=10) as client:  # keep-alive connection
                while not stop.is_set():
                    response = client.post("/predict", json=rows[i])
                    answers[i].append((response.status_code, response.json().get("model_version", "")))
        except BaseException as exc:  # a dropped connection is a failed request
            failures.append(exc)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    ModelRegistry(root).promote(v2)
    try:
        deadline = time.monotonic() + 15
        while not all(a and a[-1][1] == v2 for a in answers):
            assert not failures, failures
            assert time.monotonic() < deadline, "the new model was not picked up"
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        ModelRegistry(root).promote(v1)  # leave the module's store as it was

    assert failures == []
    every = [answer for client in answers for answer in client]
    assert {status for status, _ in every} == {200}
    assert {version for _, version in every} == {v1, v2}
    assert len(every) > 200


def test_several_workers_use_the_factory(store: tuple[Path, str, str]) -> None:
    server = Server(store[0], "--workers", "2")
    try:
        with httpx.Client(base_url=server.url) as client:
            versions = {
                client.post("/predict", json=customers(1)[0]).json()["model_version"] for _ in range(20)
            }
        assert versions == {store[1]}
    finally:
        code, output = server.stop()
    assert code in (0, -signal.SIGTERM), output
    assert output.count("model_loaded") == 2  # each worker loaded (and verified) the model
