"""Prometheus metric definitions for the scorer and the API.

Each component builds its metrics on a ``CollectorRegistry`` it is given, so
tests and several apps in one process never collide on the global registry.
Names and labels here are a contract with ``monitoring/prometheus.yml``, the
alert rules and the Grafana dashboard. Every registry also carries the process
(``process_*``: memory, CPU, open files) and garbage-collector (``python_gc_*``)
collectors, which the default global registry would otherwise be the only one to have.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, GCCollector, Histogram, ProcessCollector

from monitoring.batch_histogram import BatchHistogram

#: The distribution of predicted churn: one bucket every 0.1 on [0, 1].
PROBABILITY_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))
#: Model time per batch: sub-millisecond to a second.
INFERENCE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
#: Event time to prediction written.
E2E_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
#: API request latency.
REQUEST_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


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
    return Gauge(
        "churn_model_info",
        "The model version in use (value 1).",
        ["version", "model"],
        registry=registry,
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
    )


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
        )


@dataclass(frozen=True)
class ApiMetrics(ModelMetrics):
    registry: CollectorRegistry
    requests: Counter
    request_latency: Histogram
    probability: BatchHistogram
    model_info: Gauge
    model_reload_failures: Counter
    model_fallback: Gauge
    auth_failures: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> ApiMetrics:
        reg = registry if registry is not None else CollectorRegistry()
        _runtime_collectors(reg)
        return cls(
            registry=reg,
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
        )


def set_model_info(gauge: Gauge, version: str, model: str) -> None:
    """Exactly one series with value 1: the model in use now."""
    gauge.clear()
    gauge.labels(version=version, model=model).set(1)
