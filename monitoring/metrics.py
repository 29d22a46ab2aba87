"""Prometheus metric definitions for the scorer, the API and the online-quality job.

Each component builds its metrics on a ``CollectorRegistry`` it is given, so
tests and several apps in one process never collide on the global registry.
Names and labels here are a contract with ``monitoring/prometheus.yml``, the
alert rules and the Grafana dashboard. Every registry also carries the process
(``process_*``: memory, CPU, open files) and garbage-collector (``python_gc_*``)
collectors, which the default global registry would otherwise be the only one to have.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, GCCollector, Histogram, ProcessCollector

from monitoring.batch_histogram import BatchHistogram
from monitoring.multiprocess import exposition_registry

#: The distribution of predicted churn: one bucket every 0.1 on [0, 1].
PROBABILITY_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))
#: Model time per batch: sub-millisecond to a second.
INFERENCE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
#: Event time to prediction written.
E2E_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
#: API request latency.
REQUEST_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_HOUR, _DAY = 3600.0, 86400.0
#: From a prediction's event time to its outcome being observed: seconds (demos) to the 90-day horizon.
LABEL_DELAY_BUCKETS = (
    *(1.0, 5.0, 15.0, 60.0, 300.0, 900.0, _HOUR, 6 * _HOUR),
    *(_DAY, 3 * _DAY, 7 * _DAY, 14 * _DAY, 30 * _DAY, 60 * _DAY, 90 * _DAY),
)
#: Labels of every live-quality series: the model version and its role.
QUALITY_LABELS = ("model_version", "role")


def _probability(registry: CollectorRegistry) -> BatchHistogram:
    return BatchHistogram(
        "churn_prediction_probability",
        "Predicted churn probabilities (the distribution of predicted churn).",
        buckets=PROBABILITY_BUCKETS,
        registry=registry,
    )


def _runtime_collectors(registry: CollectorRegistry) -> None:
    """``process_*`` and ``python_gc_*`` series of this process on ``registry``."""
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)


def _model_info(registry: CollectorRegistry) -> Gauge:
    # With several API workers: 1 for a version while any live worker serves it.
    return Gauge(
        "churn_model_info",
        "The model version in use (value 1; 0 for a version replaced in an API worker).",
        ["version", "model"],
        registry=registry,
        multiprocess_mode="livemax",
    )


def _model_reload_failures(registry: CollectorRegistry) -> Counter:
    return Counter(
        "churn_model_reload_failures",
        "Model versions refused on reload (bad sha256, unreadable artifact).",
        registry=registry,
    )


def _model_fallback(registry: CollectorRegistry) -> Gauge:
    return Gauge(
        "churn_model_fallback",
        "1 while the model serving is not the promoted one (CURRENT), because CURRENT was refused.",
        registry=registry,
        multiprocess_mode="livemax",
    )


@dataclass(frozen=True)
class ShadowMetrics:
    """The shadow challenger, as the scorer and the API report it (see docs/mlops.md)."""

    predictions: Counter
    failures: Counter
    info: Gauge
    probability: BatchHistogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ShadowMetrics:
        return cls(
            predictions=Counter(
                "churn_shadow_predictions",
                "Challenger predictions computed in shadow beside the champion (never for decisions).",
                ["model_version"],
                registry=registry,
            ),
            failures=Counter(
                "churn_shadow_failures",
                "Records the challenger failed to score in shadow; the champion's answer went out anyway.",
                ["model_version"],
                registry=registry,
            ),
            info=Gauge(
                "churn_challenger_info",
                "The challenger version scored in shadow (value 1); absent when none is set.",
                ["version", "model"],
                registry=registry,
            ),
            probability=BatchHistogram(
                "churn_shadow_probability",
                "Churn probabilities the challenger predicted in shadow.",
                buckets=PROBABILITY_BUCKETS,
                registry=registry,
            ),
        )

    def challenger_changed(self, version: str | None, model: str = "") -> None:
        """The challenger now scoring (None: none)."""
        self.info.clear()
        if version is not None:
            self.info.labels(version=version, model=model).set(1)


class ModelMetrics:
    """The model in use, the refused reloads and the fallback, as every process serving a model reports them.

    Hand the metrics object to ``models.live.LiveModel(events=...)``: it calls these methods.
    """

    model_info: Gauge
    model_reload_failures: Counter
    model_fallback: Gauge

    def model_loaded(self, version: str, model: str) -> None:
        set_model_info(self.model_info, version, model)

    def model_refused(self) -> None:
        self.model_reload_failures.inc()

    def model_is_fallback(self, active: bool) -> None:
        self.model_fallback.set(1 if active else 0)


@dataclass(frozen=True)
class ScorerMetrics(ModelMetrics):
    registry: CollectorRegistry
    events_consumed: Counter
    predictions: Counter
    dead_letters: Counter
    batch_size: Histogram
    inference_latency: Histogram
    end_to_end_latency: BatchHistogram
    probability: BatchHistogram
    consumer_lag: Gauge
    model_info: Gauge
    drift_psi: Gauge
    model_reload_failures: Counter
    model_fallback: Gauge
    broker_up: Gauge
    scorer_ready: Gauge
    scorer_condition: Gauge
    delivery_retries: Counter
    delivery_failing: Gauge
    scoring_paused: Gauge
    reasons_served: Gauge
    partition_stalled: Gauge
    stall_recoveries: Counter
    fetch_wait: Gauge
    shadow: ShadowMetrics

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> ScorerMetrics:
        reg = registry if registry is not None else CollectorRegistry()
        _runtime_collectors(reg)
        return cls(
            registry=reg,
            events_consumed=Counter(
                "churn_events_consumed", "Records read from the input topic.", ["topic"], registry=reg
            ),
            predictions=Counter(
                "churn_predictions",
                "Predictions written, by model version and outcome (churn/no_churn).",
                ["model_version", "outcome"],
                registry=reg,
            ),
            dead_letters=Counter(
                "churn_dead_letters", "Records sent to the dead-letter topic.", ["error_type"], registry=reg
            ),
            batch_size=Histogram(
                "churn_batch_size", "Records per micro-batch.", buckets=BATCH_BUCKETS, registry=reg
            ),
            inference_latency=Histogram(
                "churn_inference_latency_seconds",
                "Model time per micro-batch.",
                buckets=INFERENCE_BUCKETS,
                registry=reg,
            ),
            end_to_end_latency=BatchHistogram(
                "churn_end_to_end_latency_seconds",
                "From event_time to the prediction acknowledged by the broker.",
                buckets=E2E_BUCKETS,
                registry=reg,
            ),
            probability=_probability(reg),
            consumer_lag=Gauge(
                "churn_consumer_lag",
                "Records behind the end of each assigned partition.",
                ["topic", "partition"],
                registry=reg,
            ),
            model_info=_model_info(reg),
            drift_psi=Gauge(
                "churn_drift_psi",
                "Population stability index of recent predictions against the training reference.",
                registry=reg,
            ),
            model_reload_failures=_model_reload_failures(reg),
            model_fallback=_model_fallback(reg),
            broker_up=Gauge(
                "churn_broker_up",
                "1 while the scorer's broker probe succeeds, 0 during an outage.",
                registry=reg,
            ),
            scorer_ready=Gauge(
                "churn_scorer_ready",
                "1 while every readiness condition of the scorer holds (what /health/ready answers).",
                registry=reg,
            ),
            scorer_condition=Gauge(
                "churn_scorer_condition",
                "1 while a readiness condition holds: model, assignment, broker, delivery, scoring, stall.",
                ["condition"],
                registry=reg,
            ),
            delivery_retries=Counter(
                "churn_delivery_retries",
                "Output records produced again after a retriable delivery failure, by topic and error.",
                ["topic", "reason"],
                registry=reg,
            ),
            delivery_failing=Gauge(
                "churn_delivery_failing",
                "1 while a batch's output is unacknowledged for longer than CHURN_DELIVERY_FAILING_AFTER_S.",
                registry=reg,
            ),
            reasons_served=Gauge(
                "churn_scorer_reasons",
                "With CHURN_SCORER_EXPLAIN: 1 while predictions carry reason codes, 0 while the model "
                "in use (label) cannot give exact ones and predictions say why instead.",
                ["model_version"],
                registry=reg,
            ),
            scoring_paused=Gauge(
                "churn_scoring_paused",
                "1 while the model-failure breaker has paused consuming (the model fails on most records).",
                registry=reg,
            ),
            partition_stalled=Gauge(
                "churn_partition_stalled",
                "1 while an assigned partition's position has not moved for CHURN_STALL_AFTER_S with lag.",
                ["topic", "partition"],
                registry=reg,
            ),
            stall_recoveries=Counter(
                "churn_stall_recoveries",
                "Recovery steps taken for a stalled partition, by action (seek, recreate, fetch_wait).",
                ["topic", "partition", "action"],
                registry=reg,
            ),
            fetch_wait=Gauge(
                "churn_fetch_wait_ms",
                "How long the scorer's fetches may wait for data now (raised on stalls and ahead of them).",
                registry=reg,
            ),
            shadow=ShadowMetrics.create(reg),
        )


@dataclass(frozen=True)
class ApiMetrics(ModelMetrics):
    """The API's metrics; ``exposition`` is what ``/metrics`` serves.

    In one process ``exposition`` is ``registry``. With ``metrics_dir`` (``churn api
    --workers N``, see :mod:`monitoring.multiprocess`) it sums every worker's files.
    """

    registry: CollectorRegistry
    exposition: CollectorRegistry
    requests: Counter
    request_latency: Histogram
    probability: BatchHistogram
    model_info: Gauge
    model_reload_failures: Counter
    model_fallback: Gauge
    auth_failures: Counter
    shadow: ShadowMetrics

    @classmethod
    def create(
        cls,
        registry: CollectorRegistry | None = None,
        *,
        metrics_dir: Path | None = None,
        supervisor: int | None = None,
    ) -> ApiMetrics:
        reg = registry if registry is not None else CollectorRegistry()
        _runtime_collectors(reg)
        return cls(
            registry=reg,
            exposition=reg if metrics_dir is None else exposition_registry(metrics_dir, supervisor),
            requests=Counter(
                "churn_api_requests",
                "HTTP requests by route and status.",
                ["route", "method", "status"],
                registry=reg,
            ),
            request_latency=Histogram(
                "churn_api_request_latency_seconds",
                "HTTP request latency by route.",
                ["route"],
                buckets=REQUEST_BUCKETS,
                registry=reg,
            ),
            probability=_probability(reg),
            model_info=_model_info(reg),
            model_reload_failures=_model_reload_failures(reg),
            model_fallback=_model_fallback(reg),
            auth_failures=Counter(
                "churn_api_auth_failures",
                "Requests refused by the API key check, by reason: missing_key, invalid_key, "
                "insufficient_scope, throttled (an address over CHURN_API_AUTH_FAILURE_LIMIT).",
                ["reason"],
                registry=reg,
            ),
            shadow=ShadowMetrics.create(reg),
        )


@dataclass(frozen=True)
class QualityMetrics:
    """``churn quality``: live model quality per model version and role (``champion``/``challenger``).

    The ``churn_live_*`` gauges describe the last ``CHURN_QUALITY_WINDOW`` labelled
    predictions of each version (``churn_live_labelled`` of them); the alert compares
    ``churn_live_roc_auc`` with ``churn_model_training_roc_auc`` minus
    ``churn_quality_alert_margin`` once ``churn_live_labelled`` reaches
    ``churn_quality_alert_min_labelled``.
    """

    registry: CollectorRegistry
    live_roc_auc: Gauge
    live_precision: Gauge
    live_recall: Gauge
    live_brier: Gauge
    live_calibration_observed: Gauge
    live_calibration_predicted: Gauge
    live_labelled: Gauge
    labelled_predictions: Counter
    label_delay: Histogram
    outcomes_unmatched: Counter
    records: Counter
    dead_letters: Counter
    predictions_tracked: Gauge
    outcomes_pending: Gauge
    training_roc_auc: Gauge
    alert_margin: Gauge
    alert_min_labelled: Gauge
    ready: Gauge
    condition: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> QualityMetrics:
        reg = registry if registry is not None else CollectorRegistry()
        _runtime_collectors(reg)
        versioned = list(QUALITY_LABELS)
        return cls(
            registry=reg,
            live_roc_auc=Gauge(
                "churn_live_roc_auc",
                "ROC AUC of the labelled predictions in the window.",
                versioned,
                registry=reg,
            ),
            live_precision=Gauge(
                "churn_live_precision",
                "Precision at the model's threshold over the labelled predictions in the window.",
                versioned,
                registry=reg,
            ),
            live_recall=Gauge(
                "churn_live_recall",
                "Recall at the model's threshold over the labelled predictions in the window.",
                versioned,
                registry=reg,
            ),
            live_brier=Gauge(
                "churn_live_brier",
                "Brier score (mean squared error of the probability) over the window's labelled predictions.",
                versioned,
                registry=reg,
            ),
            live_calibration_observed=Gauge(
                "churn_live_calibration_observed",
                "Observed churn rate of the window's labelled predictions, by predicted-probability bucket "
                "(upper bound).",
                [*versioned, "bucket"],
                registry=reg,
            ),
            live_calibration_predicted=Gauge(
                "churn_live_calibration_predicted",
                "Mean predicted probability of the window's labelled predictions, by bucket (upper bound).",
                [*versioned, "bucket"],
                registry=reg,
            ),
            live_labelled=Gauge(
                "churn_live_labelled",
                "Labelled predictions in the window the live metrics describe.",
                versioned,
                registry=reg,
            ),
            labelled_predictions=Counter(
                "churn_labelled_predictions",
                "Predictions joined with an observed outcome.",
                versioned,
                registry=reg,
            ),
            label_delay=Histogram(
                "churn_label_delay_seconds",
                "From a prediction's event time to the observation of its outcome.",
                versioned,
                buckets=LABEL_DELAY_BUCKETS,
                registry=reg,
            ),
            outcomes_unmatched=Counter(
                "churn_outcomes_unmatched",
                "Outcomes that found no prediction of their customer within the horizon.",
                registry=reg,
            ),
            records=Counter(
                "churn_quality_records", "Records read by the quality job, by topic.", ["topic"], registry=reg
            ),
            dead_letters=Counter(
                "churn_quality_dead_letters",
                "Records the quality job could not read (sent to its dead-letter topic).",
                ["topic", "error_type"],
                registry=reg,
            ),
            predictions_tracked=Gauge(
                "churn_quality_predictions_tracked",
                "Latest predictions per customer and model version held for joining (within the horizon).",
                registry=reg,
            ),
            outcomes_pending=Gauge(
                "churn_quality_outcomes_pending",
                "Outcomes that arrived before any prediction of their customer, waiting for one.",
                registry=reg,
            ),
            training_roc_auc=Gauge(
                "churn_model_training_roc_auc",
                "Held-out ROC AUC of the model version at training time (its manifest).",
                ["model_version"],
                registry=reg,
            ),
            alert_margin=Gauge(
                "churn_quality_alert_margin",
                "How far live ROC AUC may fall below training ROC AUC before the alert fires.",
                registry=reg,
            ),
            alert_min_labelled=Gauge(
                "churn_quality_alert_min_labelled",
                "Labelled predictions a version needs before the live-quality alert can fire.",
                registry=reg,
            ),
            ready=Gauge(
                "churn_quality_ready",
                "1 while every readiness condition of the quality job holds (what /health/ready answers).",
                registry=reg,
            ),
            condition=Gauge(
                "churn_quality_condition",
                "1 while a readiness condition of the quality job holds: assignment, recovery.",
                ["condition"],
                registry=reg,
            ),
        )


@dataclass(frozen=True)
class RetrainMetrics:
    """``churn retrain --listen``: alerts received by the webhook and the retrains they started."""

    registry: CollectorRegistry
    triggers: Counter
    runs: Counter
    running: Gauge
    last_run_end: Gauge
    auth_failures: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> RetrainMetrics:
        reg = registry if registry is not None else CollectorRegistry()
        _runtime_collectors(reg)
        return cls(
            registry=reg,
            triggers=Counter(
                "churn_retrain_triggers",
                'Alerts received by the retrain webhook (and schedule ticks, alertname="schedule"), by '
                "outcome: started, queued, coalesced (joined a waiting follow-up), ignored (resolved, "
                'or an alertname that does not retrain: alertname="other").',
                ["alertname", "outcome"],
                registry=reg,
            ),
            runs=Counter(
                "churn_retrain_runs",
                "Retrain runs the webhook or the schedule started, by decision: promoted, "
                "kept_challenger, skipped, failed.",
                ["decision"],
                registry=reg,
            ),
            running=Gauge("churn_retrain_running", "1 while a retrain runs.", registry=reg),
            last_run_end=Gauge(
                "churn_retrain_last_run_end_timestamp_seconds",
                "When the last retrain ended (Unix time; 0 before the first).",
                registry=reg,
            ),
            auth_failures=Counter(
                "churn_retrain_auth_failures",
                "Webhook requests refused by the API key check: missing_key, invalid_key, "
                "insufficient_scope.",
                ["reason"],
                registry=reg,
            ),
        )


def set_model_info(gauge: Gauge, version: str, model: str) -> None:
    """Exactly one series with value 1: the model in use now.

    The previous one is set to 0 before it is removed: in multiprocess mode
    (``churn api --workers N``) a removed series stays in the worker's file with
    its last value, so it must not be 1.
    """
    for family in gauge.collect():
        for sample in family.samples:
            if sample.value:
                gauge.labels(**sample.labels).set(0)
    gauge.clear()
    gauge.labels(version=version, model=model).set(1)
