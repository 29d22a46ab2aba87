"""`churn api --workers 2` scraped by a real Prometheus: the totals are exact, whichever worker answers.

Each request opens its own connection, so the kernel spreads them over both workers;
Prometheus scrapes whichever worker accepts its connection. ``sum(churn_api_requests_total)``
must still equal the requests sent, before and after a worker is killed and replaced
(its counters stay in the per-run metrics directory).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_api_process import Server, customers
from tests.support.prometheus import PrometheusError, PrometheusServer

pytestmark = pytest.mark.e2e

FIRST, SECOND = 120, 80
PREDICT = 'churn_api_requests_total{route="/predict",status="200"}'


def _send(url: str, count: int) -> None:
    body = customers(1)[0]
    for _ in range(count):
        with httpx.Client(base_url=url) as client:  # a new connection each time: any worker may answer
            assert client.post("/predict", json=body).status_code == 200


def _value(prom: PrometheusServer, expr: str) -> float | None:
    try:
        return prom.value(expr)
    except PrometheusError:  # not scraped yet
        return None


def _wait_value(prom: PrometheusServer, expr: str, expected: float, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (value := _value(prom, expr)) != expected:
        assert time.monotonic() < deadline, f"{expr} = {value}, expected {expected}"
        time.sleep(0.5)


def _process_pids(prom: PrometheusServer) -> set[int]:
    return {int(r["metric"]["pid"]) for r in prom.query('process_resident_memory_bytes{job="churn-api"}')}


def test_two_workers_report_exact_totals_and_every_process(
    model_store: Path, prometheus_server: Callable[..., PrometheusServer]
) -> None:
    server = Server(model_store, "--workers", "2")
    metrics_dir: Path | None = None
    try:
        supervisor = server.process.pid
        prom = prometheus_server(api_targets=[server.url.removeprefix("http://")])
        _send(server.url, FIRST)
        _wait_value(prom, f"sum({PREDICT})", FIRST)
        _wait_value(prom, "sum(churn_prediction_probability_count)", FIRST)

        # process_* of the supervisor and both workers, each with its pid.
        deadline = time.monotonic() + 20
        while len(pids := _process_pids(prom)) != 3:
            assert time.monotonic() < deadline, f"process metrics for pids {pids}"
            time.sleep(0.5)
        assert supervisor in pids
        workers = pids - {supervisor}
        served = {
            int(r["metric"]["pid"])
            for r in prom.query('process_cpu_seconds_total{job="churn-api"}')
            if int(r["metric"]["pid"]) in workers
        }
        assert served == workers
        assert prom.value('count(churn_model_info{job="churn-api"} == 1)') == 1

        # A worker dies; its replacement starts from zero, the total keeps what the dead one counted.
        victim = min(workers)
        environ = Path(f"/proc/{victim}/environ").read_bytes().split(b"\0")
        metrics_dir = next(
            Path(v.split(b"=", 1)[1].decode()) for v in environ if v.startswith(b"PROMETHEUS_MULTIPROC_DIR=")
        )
        assert metrics_dir.is_dir()
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{server.url}/health/ready", timeout=1).status_code == 200:
                    now = _process_pids(prom)
                    if len(now) == 3 and victim not in now:
                        break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"no replacement worker; pids {_process_pids(prom)}"
            time.sleep(0.5)
        _send(server.url, SECOND)
        _wait_value(prom, f"sum({PREDICT})", FIRST + SECOND)
        _wait_value(prom, "sum(churn_prediction_probability_count)", FIRST + SECOND)
        assert prom.value('count(churn_model_info{job="churn-api"} == 1)') == 1
    finally:
        code, output = server.stop()
    assert code in (0, -signal.SIGTERM), output
    assert "api_worker_retired" in output
    assert metrics_dir is not None
    assert not metrics_dir.exists()  # the run's directory is removed
