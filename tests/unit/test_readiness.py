"""The scorer's readiness conditions, liveness beat and web endpoints."""

from __future__ import annotations

import gzip

import httpx
import pytest

from monitoring.metrics import QualityMetrics, ScorerMetrics
from scorer.quality_job import CONDITIONS as QUALITY_CONDITIONS
from scorer.quality_job import RECOVERY
from scorer.readiness import ASSIGNMENT, BROKER, CONDITIONS, DELIVERY, MODEL, STALL, Readiness
from scorer.web import ScorerWebServer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _readiness(
    clock: FakeClock | None = None, live_timeout_s: float = 30.0
) -> tuple[Readiness, ScorerMetrics]:
    metrics = ScorerMetrics.create()
    readiness = Readiness(
        metrics.scorer_ready,
        metrics.scorer_condition,
        live_timeout_s=live_timeout_s,
        clock=clock or FakeClock(),
    )
    return readiness, metrics


def _sample(metrics: ScorerMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_not_ready_before_an_assignment_then_ready() -> None:
    readiness, metrics = _readiness()
    verdict = readiness.verdict()
    assert not verdict.ready
    assert set(verdict.failing) == {ASSIGNMENT}
    assert _sample(metrics, "churn_scorer_ready") == 0
    readiness.set(ASSIGNMENT, True)
    assert readiness.ready
    assert _sample(metrics, "churn_scorer_ready") == 1
    assert all(_sample(metrics, "churn_scorer_condition", condition=c) == 1 for c in CONDITIONS)


def test_every_failing_condition_is_reported_with_its_reason() -> None:
    readiness, metrics = _readiness()
    readiness.set(ASSIGNMENT, True)
    readiness.set(BROKER, False, "broker x does not answer")
    readiness.set(DELIVERY, False)
    verdict = readiness.verdict()
    assert not verdict.ready
    assert verdict.failing == {BROKER: "broker x does not answer", DELIVERY: "delivery does not hold"}
    assert _sample(metrics, "churn_scorer_condition", condition=BROKER) == 0
    readiness.set(BROKER, True)
    assert not readiness.ready  # delivery still failing
    readiness.set(DELIVERY, True)
    assert readiness.ready


def test_a_condition_set_twice_keeps_its_latest_reason() -> None:
    readiness, _ = _readiness()
    readiness.set(STALL, False, "customer-events[0] stalled")
    readiness.set(STALL, False, "customer-events[0] and [1] stalled")
    assert readiness.verdict().failing[STALL] == "customer-events[0] and [1] stalled"


def test_unknown_conditions_are_refused() -> None:
    readiness, _ = _readiness()
    with pytest.raises(ValueError, match="unknown readiness condition"):
        readiness.set("moon_phase", True)


def test_alive_until_the_first_beat_is_overdue() -> None:
    clock = FakeClock()
    readiness, _ = _readiness(clock, live_timeout_s=30.0)
    assert readiness.alive() == (True, None)  # nothing beats yet: starting up
    readiness.beat()
    clock.now += 30.0
    assert readiness.alive() == (True, 30.0)
    clock.now += 0.5
    alive, since = readiness.alive()
    assert not alive
    assert since == pytest.approx(30.5)
    readiness.beat()
    assert readiness.alive()[0]


def test_web_server_answers_metrics_and_health() -> None:
    clock = FakeClock()
    readiness, metrics = _readiness(clock, live_timeout_s=10.0)
    readiness.set(MODEL, True)
    server = ScorerWebServer(metrics.registry, readiness, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        with httpx.Client(base_url=base, timeout=5.0) as client:
            ready = client.get("/health/ready")
            assert ready.status_code == 503
            assert ready.json() == {
                "status": "not_ready",
                "failing": {ASSIGNMENT: "no partition assigned yet"},
            }
            readiness.set(ASSIGNMENT, True)
            ready = client.get("/health/ready")
            assert (ready.status_code, ready.json()) == (200, {"status": "ready"})

            assert client.get("/health/live").status_code == 200
            readiness.beat()
            clock.now += 11.0
            live = client.get("/health/live")
            assert live.status_code == 503
            assert live.json()["status"] == "stuck"

            text = client.get("/metrics").text
            assert "churn_scorer_ready 1.0" in text
            assert 'churn_scorer_condition{condition="assignment"} 1.0' in text
            openmetrics = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
            assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
            assert openmetrics.text.rstrip().endswith("# EOF")
            zipped = client.get("/metrics", headers={"Accept-Encoding": "gzip"})
            assert zipped.headers.get("content-encoding") == "gzip" or "churn_scorer_ready" in zipped.text
            raw = httpx.get(f"{base}/metrics", headers={"Accept-Encoding": "gzip"}, timeout=5.0)
            assert b"churn_scorer_ready" in (
                gzip.decompress(raw.content) if raw.content[:2] == b"\x1f\x8b" else raw.content
            )
            assert client.get("/nope").status_code == 404
    finally:
        server.shutdown()


def test_a_process_can_bring_its_own_conditions() -> None:
    """The quality job's readiness: its own conditions, both false at start, its own gauges."""
    metrics = QualityMetrics.create()
    readiness = Readiness(
        metrics.ready,
        metrics.condition,
        conditions=QUALITY_CONDITIONS,
        initially_failing={ASSIGNMENT: "none yet", RECOVERY: "recovering"},
        name="quality job",
    )
    assert readiness.verdict().failing == {ASSIGNMENT: "none yet", RECOVERY: "recovering"}
    assert metrics.registry.get_sample_value("churn_quality_condition", {"condition": RECOVERY}) == 0
    with pytest.raises(ValueError, match="unknown readiness condition"):
        readiness.set(MODEL, True)  # a scorer condition, not this process's
    readiness.set(ASSIGNMENT, True)
    readiness.set(RECOVERY, True)
    assert readiness.ready
    assert metrics.registry.get_sample_value("churn_quality_ready") == 1
    with pytest.raises(ValueError, match="not among"):
        Readiness(
            metrics.ready, metrics.condition, conditions=(RECOVERY,), initially_failing={ASSIGNMENT: "x"}
        )
