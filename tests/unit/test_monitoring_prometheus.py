"""A real Prometheus scrapes the real metric definitions and runs every dashboard and alert query.

Tiny exporters serve ScorerMetrics, ApiMetrics and QualityMetrics (monitoring/metrics.py) the
way the scorer, the API and the quality job do, with a background thread feeding them a steady stream of
observations; both registries carry the process and GC collectors, as in the real
components. A third exporter serves the Kafka lag exporter's series under the names and
labels of danielqsj/kafka-exporter (``promql.LAG_EXPORTER_SERIES``): that Go binary cannot
run here. Prometheus (Debian package) scrapes all three every second with the project's
alert rules loaded. Then:

* every PromQL expression of the dashboard and the alert rules is accepted, and every
  dashboard query returns data;
* the alert rules evaluate without error, and exactly the alerts the fed data should
  trigger are pending or firing.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from devstack.ports import free_port
from monitoring import promql
from monitoring.metrics import ApiMetrics, QualityMetrics, ScorerMetrics, set_model_info
from tests.support.prometheus import PrometheusServer

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "monitoring" / "grafana" / "dashboards" / "churn.json"
ALERTS = ROOT / "monitoring" / "alerts.yml"

#: What the fed data must trigger (pending or firing) and what it must not.
EXPECTED_ACTIVE = {
    "ChurnLiveRocAucBelowTraining",
    "ChurnDeadLetterRateHigh",
    "ChurnApiErrorRateHigh",
    "ChurnPredictionDrift",
    "ChurnModelReloadFailed",
    "ChurnDeliveryRetriesHigh",
    "ChurnShadowScoringFailing",
}
EXPECTED_QUIET = {
    "ChurnBrokerDown",
    "ChurnDeliveryFailing",
    "ChurnScoringPaused",
    "ChurnConsumerGroupLagGrowing",
    "ChurnLagExporterDown",
    "ChurnNoPredictions",
    "ChurnEndToEndLatencyHigh",
    "ChurnConsumerLagGrowing",
    "ChurnScorerDown",
    "ChurnScorerAbsent",
    "ChurnApiDown",
    "ChurnQualityJobDown",
    "ChurnModelFallback",
    "ChurnPartitionStalled",
    "ChurnScorerNotReady",
    "ChurnQualityJobNotReady",
}


@dataclass
class LagExporter:
    """The kafka-exporter series the dashboard and the alerts read (same names and labels)."""

    registry: CollectorRegistry
    lag: Gauge
    members: Gauge

    @classmethod
    def create(cls) -> LagExporter:
        reg = CollectorRegistry()
        group_topic_partition = sorted(promql.LAG_EXPORTER_SERIES["kafka_consumergroup_lag"])
        return cls(
            registry=reg,
            lag=Gauge("kafka_consumergroup_lag", "Lag.", group_topic_partition, registry=reg),
            members=Gauge("kafka_consumergroup_members", "Members.", ["consumergroup"], registry=reg),
        )


@dataclass
class Exporters:
    scorer: ScorerMetrics
    api: ApiMetrics
    lag_exporter: LagExporter
    quality: QualityMetrics
    scorer_target: str
    api_target: str
    lag_exporter_target: str
    quality_target: str
    predictions: int = 0


def feed_quality(q: QualityMetrics, rng: random.Random) -> None:
    """A champion whose live ROC AUC (0.70) fell below training (0.84) minus the margin, and a
    challenger doing fine; every live-quality series, as `churn quality` exports them."""
    q.alert_margin.set(0.05)
    q.alert_min_labelled.set(500)
    for version, role, auc in (("v1", "champion", 0.70), ("v2", "challenger", 0.83)):
        labels = {"model_version": version, "role": role}
        q.training_roc_auc.labels(model_version=version).set(0.84)
        q.live_roc_auc.labels(**labels).set(auc)
        q.live_precision.labels(**labels).set(0.55)
        q.live_recall.labels(**labels).set(0.61)
        q.live_brier.labels(**labels).set(0.16)
        q.live_labelled.labels(**labels).set(1000)
        for i in range(1, 11):
            bucket = f"{i / 10:.1f}"
            q.live_calibration_predicted.labels(**labels, bucket=bucket).set(i / 10 - 0.05)
            q.live_calibration_observed.labels(**labels, bucket=bucket).set(max(i / 10 - 0.1, 0.0))
    q.predictions_tracked.set(1200)
    q.outcomes_pending.set(30)
    q.ready.set(1)
    for condition in ("assignment", "recovery"):
        q.condition.labels(condition=condition).set(1)
    for labels in (
        {"model_version": "v1", "role": "champion"},
        {"model_version": "v2", "role": "challenger"},
    ):
        q.labelled_predictions.labels(**labels).inc(5)
        q.label_delay.labels(**labels).observe(rng.uniform(1.0, 20.0))
    q.outcomes_unmatched.inc()


def feed(ex: Exporters, stop: threading.Event) -> None:
    """A steady stream: 10% dead letters, 9% API 5xx, fast end-to-end, drifted PSI, no stall."""
    rng = random.Random(7)
    s, a = ex.scorer, ex.api
    set_model_info(s.model_info, "20250101T000000000000Z-abcdef12", "spline_logistic")
    set_model_info(a.model_info, "20250101T000000000000Z-abcdef12", "spline_logistic")
    s.drift_psi.set(0.35)
    s.broker_up.set(1)
    for partition, lag in (("0", 3), ("1", 5)):
        ex.lag_exporter.lag.labels(
            consumergroup="churn-scorer", topic="customer-events", partition=partition
        ).set(lag)
    ex.lag_exporter.members.labels(consumergroup="churn-scorer").set(1)
    s.consumer_lag.labels(topic="customer-events", partition="0").set(3)
    s.consumer_lag.labels(topic="customer-events", partition="1").set(5)
    # No partition stalled now; one recovered earlier (its seek counted).
    s.partition_stalled.labels(topic="customer-events", partition="0").set(0)
    s.partition_stalled.labels(topic="customer-events", partition="1").set(0)
    s.stall_recoveries.labels(topic="customer-events", partition="1", action="seek").inc()
    # Ready; every delivery succeeds, some only after a retry (20 records/s, over the warning line).
    s.scorer_ready.set(1)
    for condition in ("model", "assignment", "broker", "delivery", "scoring", "stall"):
        s.scorer_condition.labels(condition=condition).set(1)
    s.delivery_failing.set(0)
    s.scoring_paused.set(0)
    s.model_fallback.set(0)
    a.model_fallback.set(0)
    # A challenger in both; it fails on one record in ten in the stream (over the 5 % line).
    for shadow in (s.shadow, a.shadow):
        shadow.challenger_changed("20250201T000000000000Z-0badcafe", "logistic_regression")
    while not stop.wait(0.05):
        feed_quality(ex.quality, rng)
        batch = 10
        s.events_consumed.labels(topic="customer-events").inc(batch)
        s.delivery_retries.labels(topic="churn-predictions", reason="_MSG_TIMED_OUT").inc()
        s.dead_letters.labels(error_type="validation").inc(1)
        s.batch_size.observe(batch - 1)
        s.inference_latency.observe(rng.uniform(0.0002, 0.002))
        for _ in range(batch - 1):
            p = rng.random()
            outcome = "churn" if p >= 0.5 else "no_churn"
            s.predictions.labels(model_version="20250101T000000000000Z-abcdef12", outcome=outcome).inc()
            s.probability.observe(p)
            s.shadow.predictions.labels(model_version="20250201T000000000000Z-0badcafe").inc()
            s.shadow.probability.observe(min(1.0, p * 1.1))
            s.end_to_end_latency.observe(rng.uniform(0.01, 0.2))
            ex.predictions += 1
        s.shadow.failures.labels(model_version="20250201T000000000000Z-0badcafe").inc()
        for status in ["200"] * 10 + ["422"]:
            a.requests.labels(route="/predict", method="POST", status=status).inc()
            a.request_latency.labels(route="/predict").observe(rng.uniform(0.001, 0.01))
            a.probability.observe(rng.random())
            a.shadow.predictions.labels(model_version="20250201T000000000000Z-0badcafe").inc()
            a.shadow.probability.observe(rng.random())
        a.requests.labels(route="/predict", method="POST", status="500").inc()
        a.requests.labels(route="/health", method="GET", status="200").inc()
        a.request_latency.labels(route="/health").observe(0.0005)


@pytest.fixture(scope="module")
def exporters() -> Iterator[Exporters]:
    scorer, api, lag_exporter = ScorerMetrics.create(), ApiMetrics.create(), LagExporter.create()
    quality = QualityMetrics.create()
    servers = []
    targets = []
    for registry in (scorer.registry, api.registry, lag_exporter.registry, quality.registry):
        port = free_port()
        server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
        servers.append(server)
        targets.append(f"127.0.0.1:{port}")
    ex = Exporters(scorer, api, lag_exporter, quality, *targets[:3], targets[3])
    stop = threading.Event()
    feeder = threading.Thread(target=feed, args=(ex, stop), daemon=True)
    feeder.start()
    yield ex
    stop.set()
    feeder.join(timeout=5)
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, exporters: Exporters) -> Iterator[PrometheusServer]:
    """One server for the module: Prometheus takes ~5 s to apply its first target list."""
    workdir = tmp_path_factory.mktemp("prometheus")
    with PrometheusServer(
        workdir,
        [exporters.scorer_target],
        [exporters.api_target],
        lag_exporter_targets=[exporters.lag_exporter_target],
        quality_targets=[exporters.quality_target],
    ) as prom:
        prom.wait_until_scraped()
        # A refused model reload after the first scrape, so `increase()` sees the counter move.
        exporters.scorer.model_reload_failures.inc()
        yield prom


def dashboard_queries() -> list[promql.Query]:
    return promql.dashboard_queries(json.loads(DASHBOARD.read_text(encoding="utf-8")))


def rule_queries() -> list[promql.Query]:
    return promql.rule_queries(yaml.safe_load(ALERTS.read_text(encoding="utf-8")))


def test_every_dashboard_query_returns_data(prometheus: PrometheusServer) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 20
    for query in queries:
        expr = promql.for_prometheus(query.expr, interval="10s", range_="1m")
        result = prometheus.wait_for(expr, timeout=30)
        assert result, f"{query.source}: {expr}"
        for series in result:
            value = float(series["value"][1])
            assert value == value, f"{query.source}: NaN from {expr}"  # NaN means an empty ratio


def test_every_alert_expression_is_accepted(prometheus: PrometheusServer) -> None:
    queries = rule_queries()
    assert len(queries) >= 6
    for query in queries:
        prometheus.query(query.expr)  # raises PrometheusError when Prometheus refuses it


def test_core_queries_match_what_was_exported(prometheus: PrometheusServer, exporters: Exporters) -> None:
    prometheus.wait_for('churn_model_reload_failures_total{job="churn-scorer"} > 0')
    labels = [
        s["metric"]["le"] for s in prometheus.query('churn_prediction_probability_bucket{job="churn-scorer"}')
    ]
    assert sorted(labels, key=float) == [
        "0.1",
        "0.2",
        "0.3",
        "0.4",
        "0.5",
        "0.6",
        "0.7",
        "0.8",
        "0.9",
        "1.0",
        "+Inf",
    ]
    info = prometheus.query("churn_model_info")
    assert {(s["metric"]["job"], s["metric"]["version"]) for s in info} == {
        ("churn-scorer", "20250101T000000000000Z-abcdef12"),
        ("churn-api", "20250101T000000000000Z-abcdef12"),
    }
    scraped = prometheus.value('sum(churn_predictions_total{job="churn-scorer"})')
    assert 0 < scraped <= exporters.predictions
    # 9 of 10 consumed events become predictions; 1 is dead-lettered.
    ratio = prometheus.value(
        "sum(rate(churn_dead_letters_total[30s])) / sum(rate(churn_events_consumed_total[30s]))"
    )
    assert ratio == pytest.approx(0.1, rel=0.05)
    churn_share = prometheus.value(
        'sum(rate(churn_predictions_total{outcome="churn"}[30s])) / sum(rate(churn_predictions_total[30s]))'
    )
    assert 0.3 < churn_share < 0.7  # uniform probabilities, threshold 0.5


def test_alert_rules_evaluate_and_trigger_exactly_the_expected_alerts(prometheus: PrometheusServer) -> None:
    def active() -> set[str]:
        return {alert["labels"]["alertname"] for alert in prometheus.api("alerts")["alerts"]}

    prometheus.wait_for('ALERTS{alertname="ChurnModelReloadFailed"}', timeout=30)
    for name in EXPECTED_ACTIVE:
        prometheus.wait_for(f'ALERTS{{alertname="{name}"}}', timeout=30)
    rules: list[dict[str, Any]] = prometheus.rules()
    assert {rule["name"] for rule in rules} == EXPECTED_ACTIVE | EXPECTED_QUIET
    for rule in rules:
        assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))
    assert active() == EXPECTED_ACTIVE
