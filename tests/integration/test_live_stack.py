"""The monitoring contract against the real stack.

Embedded broker, a real ``churn score`` worker, a real ``churn api`` process, a real
``churn quality`` job, a producer at a steady rate that also publishes each customer's
outcome a second later (plus a few poison records and API calls, good and bad), and a
real Prometheus (Debian package) scraping all three every second with the project's
alert rules. Then:

* every PromQL expression of the Grafana dashboard returns data;
* every alert rule evaluates without error, and every metric it reads has data;

except the queries of the Kafka lag exporter's series (``promql.LAG_EXPORTER_SERIES``, job
``kafka-exporter``): that Go binary cannot run here, so no live series exist for them.
tests/unit/test_monitoring_prometheus.py serves those series under the exporter's names and
labels and checks those queries return data; CI's compose smoke test checks the real exporter.
The same holds for the series that appear only after an incident (``promql.EVENT_SERIES``,
delivery retries) and those of a shadow challenger, which this stack does not set
(``promql.CHALLENGER_SERIES``): their queries must be accepted here, and return data in that
unit test.
* the sum of ``churn_predictions_total`` equals the predictions on the topic, and the quality
  job labelled every one of them;
* the sum of ``churn_api_requests_total`` for /predict equals the requests sent, whichever of
  the two API workers served them, and every component reports ``process_*`` series.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from devstack.ports import free_port
from devstack.processes import QualityProcess
from monitoring import promql
from tests.support.bad_records import bad_records
from tests.support.kafka_tools import KafkaTools
from tests.support.prometheus import PrometheusServer
from tests.support.scorer_process import CHURN, ScorerProcess

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "monitoring" / "grafana" / "dashboards" / "churn.json"
ALERTS = ROOT / "monitoring" / "alerts.yml"
EVENTS = 600
RATE = 100


def from_lag_exporter(expr: str) -> bool:
    """Whether a query reads only what the lag exporter (not a churn component) exports."""
    names = promql.metric_names(expr)
    return 'job="kafka-exporter"' in expr or (bool(names) and names <= set(promql.LAG_EXPORTER_SERIES))


#: Series this stack never exports: after an incident, or with a challenger (none is set here).
ABSENT_HERE = frozenset(promql.EVENT_SERIES) | frozenset(promql.CHALLENGER_SERIES)


def after_an_event(expr: str) -> bool:
    """Whether a query reads only series that appear after an incident or with a challenger."""
    names = promql.metric_names(expr)
    return bool(names) and names <= ABSENT_HERE


def _http(method: str, url: str, body: bytes | None = None) -> int:
    request = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@pytest.fixture
def api_process(model_store: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "api.log").open("wb")
    process = subprocess.Popen(
        [CHURN, "api", "--port", str(port), "--store", str(model_store), "--workers", "2"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if _http("GET", f"{base}/health/ready") == 200:
                break
        except OSError:
            pass
        assert process.poll() is None, (tmp_path / "api.log").read_text()
        time.sleep(0.2)
    else:
        pytest.fail("the API never became ready:\n" + (tmp_path / "api.log").read_text())
    yield base
    process.terminate()
    process.wait(timeout=20)


def test_dashboard_and_alerts_have_data_from_the_live_stack(
    kafka: KafkaTools,
    kafka_bootstrap: str,
    topics: dict[str, str],
    start_scorer: Callable[..., ScorerProcess],
    api_process: str,
    prometheus_server: Callable[..., PrometheusServer],
    tmp_path: Path,
) -> None:
    scorer = start_scorer()
    env = dict(scorer.env)
    env.update(
        {
            "CHURN_OUTCOMES_TOPIC": kafka.unique("outcomes"),
            "CHURN_OUTCOMES_DLQ_TOPIC": kafka.unique("outcomes-dlq"),
            "CHURN_SHADOW_PREDICTIONS_TOPIC": kafka.unique("shadow"),
            "CHURN_QUALITY_APP_ID": kafka.unique("quality"),
            "CHURN_QUALITY_WEB_PORT": str(free_port()),
            "CHURN_QUALITY_INTERVAL_S": "0.5",
        }
    )
    quality = QualityProcess(env, tmp_path / "quality.log")
    try:
        scorer.wait_metrics()
        quality.wait_ready(timeout=90)
        api_target = api_process.removeprefix("http://")
        prom = prometheus_server(
            scorer_targets=[f"127.0.0.1:{scorer.web_port}"],
            api_targets=[api_target],
            quality_targets=[f"127.0.0.1:{quality.web_port}"],
        )
        _check_the_live_stack(kafka, topics, scorer, quality, api_process, prom, env, tmp_path)
    finally:
        quality.stop(timeout=30)


def _check_the_live_stack(
    kafka: KafkaTools,
    topics: dict[str, str],
    scorer: ScorerProcess,
    quality: QualityProcess,
    api_process: str,
    prom: PrometheusServer,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    produce = ["produce", "--rate", str(RATE), "--count", str(EVENTS), "--topic", topics["events"]]
    producer = subprocess.Popen(
        [CHURN, *produce, "--outcomes", "--outcome-delay", "1"],
        env=env,
        stdout=(tmp_path / "producer.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    poison = [(bad.key, bad.value) for bad in bad_records()[:6]]
    kafka.produce(topics["events"], poison)

    customer = {
        "customer_id": "live-1",
        "gender": "Female",
        "senior_citizen": 0,
        "partner": "Yes",
        "dependents": "No",
        "tenure": 5,
        "phone_service": "Yes",
        "multiple_lines": "No",
        "internet_service": "Fiber optic",
        "online_security": "No",
        "online_backup": "No",
        "device_protection": "No",
        "tech_support": "No",
        "streaming_tv": "Yes",
        "streaming_movies": "No",
        "contract": "Month-to-month",
        "paperless_billing": "Yes",
        "payment_method": "Electronic check",
        "monthly_charges": 80.5,
        "total_charges": 402.5,
    }
    deadline = time.monotonic() + EVENTS / RATE + 5
    api_ok = api_invalid = 0
    while time.monotonic() < deadline:
        assert _http("POST", f"{api_process}/predict", json.dumps(customer).encode()) == 200
        api_ok += 1
        assert _http("POST", f"{api_process}/predict", b'{"tenure": -1}') == 422
        api_invalid += 1
        assert _http("GET", f"{api_process}/health") == 200
        time.sleep(0.1)
    assert producer.wait(timeout=60) == 0, (tmp_path / "producer.log").read_text()

    # Everything produced is scored or dead-lettered. (Read the topics: the embedded broker's
    # watermarks count record batches, not records.)
    written = len(kafka.consume(topics["predictions"], EVENTS, timeout=60, idle=2))
    dead = len(kafka.consume(topics["dlq"], len(poison), timeout=30, idle=1))
    assert (written, dead) == (EVENTS, len(poison)), scorer.tail()
    deadline = time.monotonic() + 60
    while quality.metric("churn_live_labelled") < EVENTS:  # every prediction met its outcome
        assert time.monotonic() < deadline, quality.tail()
        time.sleep(0.5)

    missing: list[str] = []
    queries = promql.dashboard_queries(json.loads(DASHBOARD.read_text(encoding="utf-8")))
    exporter_only = [q for q in queries if from_lag_exporter(q.expr)]
    assert len(exporter_only) == 3, [q.source for q in exporter_only]  # the broker-view panels
    for query in queries:
        expr = promql.for_prometheus(query.expr, interval="10s", range_="1m")
        if query in exporter_only or after_an_event(query.expr):
            prom.query(expr)  # accepted by the real server
            continue
        try:
            prom.wait_for(expr, timeout=20)
        except Exception as error:  # collect every panel that stays empty, not just the first
            missing.append(f"{query.source}: {expr} ({error})")
    assert not missing, "dashboard queries without data:\n" + "\n".join(missing)

    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    for query in promql.rule_queries(rules):
        prom.query(promql.for_prometheus(query.expr))  # accepted by the real server
        if from_lag_exporter(query.expr):
            continue
        for name in promql.metric_names(query.expr) - ABSENT_HERE:
            assert prom.wait_for(name, timeout=10), f"{query.source}: no data for {name}"
    deadline = time.monotonic() + 30
    while True:
        states = prom.rules()
        if states and all(r.get("health") == "ok" for r in states):
            break
        assert time.monotonic() < deadline, f"rules not healthy: {states}"
        time.sleep(1)

    # The counter agrees with the topic, once Prometheus has scraped the final value.
    deadline = time.monotonic() + 20
    while (counted := prom.value("sum(churn_predictions_total)")) != written:
        assert time.monotonic() < deadline, f"churn_predictions_total={counted}, topic holds {written}"
        time.sleep(0.5)
    # Each request is its own connection, so both API workers answer some: the sum is still exact.
    deadline = time.monotonic() + 20
    api_counts = (
        ('sum(churn_api_requests_total{route="/predict",status="200"})', api_ok),
        (
            'sum(churn_api_requests_total{route="/predict",status="422"})',
            api_invalid,
        ),
    )
    for expr, sent in api_counts:
        while (counted := prom.value(expr)) != sent:
            assert time.monotonic() < deadline, f"{expr}={counted}, sent {sent}"
            time.sleep(0.5)
    for job in ("churn-scorer", "churn-api", "churn-quality"):
        assert prom.value(f'count(process_resident_memory_bytes{{job="{job}"}} > 0)') >= 1, job
        assert prom.query(f'process_cpu_seconds_total{{job="{job}"}}'), job
    assert prom.value('count(process_resident_memory_bytes{job="churn-api"})') == 3  # supervisor + 2 workers
    assert scorer.running() and quality.running()
