"""The API as it really runs: `churn api` under uvicorn, spoken to over loopback HTTP."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.ports import free_port
from devstack.processes import ChurnProcess, churn_executable
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


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _huge_header(port: int, megabytes: int) -> int:
    """Send one request with a ``megabytes`` MB header; the bytes the server took before closing."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nhost: t\r\nx-big: ")
            chunk = b"a" * 65536
            while sent < megabytes * 2**20:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
    return sent


def test_hostile_connections_do_not_hold_the_real_server(store: tuple[Path, str, str]) -> None:
    """The findings against `churn api` itself: four 50 MB headers took the process from 205 to
    404 MB; a slow-header connection was still open after 70 s. Now: bounded memory, 431, 408."""
    server = Server(store[0], env={"CHURN_API_HEADER_TIMEOUT_S": "2"})
    try:
        pid = server.process.pid
        before = _rss_mb(pid)
        peak = before
        results: list[int] = []
        threads = [
            threading.Thread(target=lambda: results.append(_huge_header(server.port, 50))) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, _rss_mb(pid))
            time.sleep(0.01)
        assert len(results) == 4 and max(results) < 50 * 2**20
        assert peak - before < 30, f"{before:.0f} -> {peak:.0f} MB"

        slow = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        started = time.monotonic()
        slow.sendall(b"GET /health HTTP/1.1\r\n")
        answer = b""
        with contextlib.suppress(OSError):
            for i in range(100):
                slow.sendall(f"x-{i}: y\r\n".encode())
                time.sleep(0.1)
                slow.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    answer += slow.recv(4096)
                slow.setblocking(True)
                if answer:
                    break
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert time.monotonic() - started < 5
        slow.close()
        assert httpx.get(f"{server.url}/health/ready", timeout=5).status_code == 200  # still serving
    finally:
        code, output = server.stop()
    assert code in (0, -signal.SIGTERM), output
    assert "http_header_timeout" in output


def test_a_short_api_key_stops_the_real_server_before_it_listens(tmp_path: Path) -> None:
    key_file = tmp_path / "api_key"
    key_file.write_text("change-me\n")
    result = subprocess.run(
        [churn_executable(), "api", "--port", str(free_port()), "--store", str(tmp_path)],
        env={**os.environ, "CHURN_API_KEY_FILE": str(key_file)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "at least 32 are required" in " ".join(result.stderr.split())
    assert "change-me" not in result.stdout + result.stderr


def test_a_public_address_without_a_key_stops_the_real_server(tmp_path: Path) -> None:
    port = free_port()
    command = [churn_executable(), "api", "--host", "0.0.0.0", "--port", str(port), "--store", str(tmp_path)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_API_")}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "refusing to listen on 0.0.0.0 without an API key" in message
    assert "--allow-unauthenticated" in message
    with socket.socket() as probe:  # nothing listens
        assert probe.connect_ex(("127.0.0.1", port)) != 0
