"""The model-failure breaker and the batch handler around it: open, hold, probe, close."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import pytest

from config.settings import Settings
from kafka_io.records import RawRecord
from monitoring.metrics import ScorerMetrics
from producer.events import synthetic_events
from scorer.breaker import ScoringBreaker
from scorer.handler import BatchHandler
from scorer.readiness import SCORING


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _breaker(clock: Clock, window: int = 100, threshold: float = 0.5) -> ScoringBreaker:
    return ScoringBreaker(window, threshold, probe_interval_s=30.0, clock=clock)


def test_it_opens_when_the_share_of_failures_exceeds_the_threshold_not_at_it() -> None:
    breaker = _breaker(Clock())
    assert not breaker.record(100, 50, "v1")  # exactly half: not more than the threshold
    assert breaker.share == 0.5
    assert breaker.record(2, 2, "v1")  # 52 of 102
    assert breaker.open


def test_it_waits_for_a_tenth_of_the_window_before_deciding() -> None:
    breaker = _breaker(Clock(), window=1000)
    assert breaker.min_records == 100
    assert not breaker.record(99, 99, "v1")
    assert breaker.record(1, 1, "v1")


def test_the_window_slides_by_whole_batches() -> None:
    breaker = _breaker(Clock(), window=100)
    breaker.record(60, 25, "v1")
    breaker.record(60, 0, "v1")  # 120 records: the first batch still needed to fill the window
    assert (breaker.valid, breaker.failed) == (120, 25)
    breaker.record(50, 0, "v1")  # the first batch leaves: 110 records remain
    assert (breaker.valid, breaker.failed) == (110, 0)
    assert not breaker.open
    assert not breaker.probes


def test_batches_without_valid_records_do_not_count() -> None:
    breaker = _breaker(Clock())
    assert not breaker.record(0, 0, "v1")
    assert breaker.valid == 0


def test_a_probe_is_due_after_the_interval_or_when_another_model_serves() -> None:
    clock = Clock()
    breaker = _breaker(clock)
    breaker.record(20, 20, "v1")
    assert breaker.open
    assert not breaker.probe_due("v1")
    assert breaker.probe_due("v2")
    clock.now += 29.9
    assert not breaker.probe_due("v1")
    clock.now += 0.1
    assert breaker.probe_due("v1")


def test_a_failed_probe_keeps_it_open_and_schedules_the_next_a_good_one_closes_it_afresh() -> None:
    clock = Clock()
    breaker = _breaker(clock)
    breaker.record(20, 20, "v1")
    clock.now += 30
    assert breaker.record(20, 11, "v1")  # 55 % still fail
    assert not breaker.probe_due("v1")
    clock.now += 30
    assert not breaker.record(20, 10, "v2")  # half: good enough
    assert not breaker.open
    assert (breaker.valid, breaker.failed) == (20, 10)  # the window starts with the probe
    assert breaker.probes == 2


class _Model:
    threshold = 0.5

    def __init__(self, version: str, fails: bool) -> None:
        self.version = version
        self.fails = fails
        self.manifest: dict[str, Any] = {}

    def predict_columns(self, columns: Mapping[str, Sequence[Any]], n: int) -> np.ndarray:
        if self.fails:
            raise RuntimeError("broken model")
        return np.full(n, 0.25)


class _Live:
    def __init__(self, model: _Model) -> None:
        self.current = model
        self.predictor = model


@pytest.fixture
def handler() -> BatchHandler:
    settings = Settings(
        scoring_breaker_window=100, scoring_breaker_threshold=0.5, scoring_probe_interval_s=3600
    )
    return BatchHandler(settings, _Live(_Model("bad-1", fails=True)), ScorerMetrics.create(), sink=None)  # type: ignore[arg-type]


def _batch(n: int) -> list[RawRecord]:
    events = synthetic_events(n, seed=3)
    return [RawRecord(orjson.dumps(e), b"k", "events", 0, i) for i, e in enumerate(events)]


def test_the_handler_pauses_on_a_broken_model_and_resumes_when_a_good_one_serves(
    handler: BatchHandler,
) -> None:
    metrics = handler.metrics
    records = _batch(20)
    result = handler.score(records)
    assert result.dead_letter_types == {"scoring_failed": 20}  # the engine holds it: not delivered
    assert handler.paused
    assert not handler.readiness.verdict().ready
    assert "bad-1 failed on 20 of the last 20 records" in handler.readiness.verdict().failing[SCORING]
    assert metrics.registry.get_sample_value("churn_scoring_paused") == 1
    assert not handler.probe_due()

    handler.live.current = _Model("good-2", fails=False)  # type: ignore[misc]  # a promotion
    assert handler.probe_due()
    result = handler.score(records)
    assert not handler.paused
    assert len(result.predictions) == 20
    assert SCORING not in handler.readiness.verdict().failing
    assert metrics.registry.get_sample_value("churn_scoring_paused") == 0


def test_a_few_failures_are_dead_lettered_without_pausing(handler: BatchHandler) -> None:
    handler.live.current = _Model("good-1", fails=False)  # type: ignore[misc]
    for _ in range(5):
        handler.score(_batch(20))
    assert not handler.paused


def test_delivery_failing_sets_readiness_and_the_gauge(handler: BatchHandler) -> None:
    handler.delivery_changed(True, "3 output records unacknowledged for 31 s")
    verdict = handler.readiness.verdict()
    assert verdict.failing["delivery"] == "3 output records unacknowledged for 31 s"
    assert handler.metrics.registry.get_sample_value("churn_delivery_failing") == 1
    handler.delivery_changed(False, "")
    assert "delivery" not in handler.readiness.verdict().failing
    assert handler.metrics.registry.get_sample_value("churn_delivery_failing") == 0
    handler.delivery_retried("dlq", "_MSG_TIMED_OUT", 4)
    sample = handler.metrics.registry.get_sample_value(
        "churn_delivery_retries_total", {"topic": "dlq", "reason": "_MSG_TIMED_OUT"}
    )
    assert sample == 4
