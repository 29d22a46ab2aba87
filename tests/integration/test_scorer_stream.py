"""`churn score` subprocesses, Faust worker and native engine (``engine`` fixture), against a real broker."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pandas as pd
import pytest

from producer.events import synthetic_events
from schemas.dead_letters import DeadLetter
from schemas.predictions import ChurnPrediction
from tests.support.bad_records import bad_records, dead_letter_of
from tests.support.kafka_tools import KafkaTools
from tests.support.scorer_process import CHURN, ScorerProcess

pytestmark = pytest.mark.integration


def _keyed(events: list[dict]) -> list[tuple[bytes, bytes]]:  # type: ignore[type-arg]
    return [(e["customer_id"].encode(), orjson.dumps(e)) for e in events]


def _cli_probabilities(events: list[dict], store: Path, tmp_path: Path) -> dict[str, float]:  # type: ignore[type-arg]
    """What `churn predict` gives for each event's row, by customer_id."""
    from training.data import to_telco_csv

    frame = pd.DataFrame(events).drop(columns=["event_id", "event_time"])
    source, scored = tmp_path / "events.csv", tmp_path / "scored.csv"
    to_telco_csv(frame, source)
    subprocess.run(
        [CHURN, "predict", "--input", str(source), "--output", str(scored), "--store", str(store)],
        check=True,
        capture_output=True,
    )
    out = pd.read_csv(scored)
    return dict(zip(out["customerID"], out["churn_probability"], strict=True))


def test_scores_every_valid_event_and_dead_letters_every_bad_one(
    kafka: KafkaTools,
    topics: dict[str, str],
    start_scorer: Callable[..., ScorerProcess],
    model_store: Path,
    tmp_path: Path,
) -> None:
    events = synthetic_events(2000, seed=11)
    bad = bad_records()
    assert len({b.error_type for b in bad}) >= 12
    scorer = start_scorer()
    # Interleave bad records with the valid ones.
    records = _keyed(events)
    for i, b in enumerate(bad):
        records.insert(i * 70, (b.key, b.value))  # type: ignore[arg-type]
    kafka.produce(topics["events"], records)

    predictions = kafka.consume(topics["predictions"], len(events), timeout=90, idle=2.0)
    letters = kafka.consume(topics["dlq"], len(bad), timeout=30, idle=2.0)

    expected = _cli_probabilities(events, model_store, tmp_path)
    by_event = {e["event_id"]: e for e in events}
    seen: dict[str, ChurnPrediction] = {}
    for record in predictions:
        assert record.value is not None
        prediction = ChurnPrediction.model_validate_json(record.value)
        seen[prediction.event_id] = prediction
        event = by_event[prediction.event_id]
        assert record.key == event["customer_id"].encode()
        assert record.headers["event_id"] == prediction.event_id.encode()
        assert record.headers["model_version"] == prediction.model_version.encode()
        assert prediction.churn_probability == pytest.approx(expected[event["customer_id"]], abs=1e-9)
    assert set(seen) == set(by_event), f"missing {len(set(by_event) - set(seen))} predictions"

    assert len(letters) == len(bad)
    found = set()
    for r in letters:
        b = dead_letter_of(bad, r.key, r.value, r.headers)  # original bytes and key (cut above the limits)
        meta = DeadLetter.from_headers(list(r.headers.items()))
        assert meta.error_type == b.error_type, (b.name, meta.error_message)
        assert meta.source_topic == topics["events"]
        assert meta.error_message
        found.add(b.name)
    assert found == {b.name for b in bad}
    assert scorer.running(), scorer.tail()
    assert scorer.metric("churn_dead_letters_total") == len(bad)
    assert scorer.metric("churn_events_consumed_total") == len(records)
    # Drift: the PSI of the recent predictions against the model's reference is set and finite.
    psi = scorer.metric("churn_drift_psi")
    assert 0.0 < psi < 5.0, psi
    # Lag: one series per assigned partition, all caught up once everything is scored.
    deadline = time.monotonic() + 15
    lag_series = _lag_series(scorer)
    while (len(lag_series) != 4 or any(lag_series.values())) and time.monotonic() < deadline:
        time.sleep(0.5)
        lag_series = _lag_series(scorer)
    assert sorted(lag_series) == [(topics["events"], str(p)) for p in range(4)], lag_series
    assert all(v == 0 for v in lag_series.values()), lag_series
    assert scorer.stop(signal.SIGTERM) == 0, scorer.tail()


def _lag_series(scorer: ScorerProcess) -> dict[tuple[str, str], float]:
    out = {}
    for line in scorer.metrics().splitlines():
        if line.startswith("churn_consumer_lag{"):
            head, _, value = line.rpartition(" ")
            labels = dict(part.split("=", 1) for part in head[len("churn_consumer_lag{") : -1].split(","))
            out[(labels["topic"].strip('"'), labels["partition"].strip('"'))] = float(value)
    return out


def test_two_workers_split_the_partitions_and_score_everything(
    kafka: KafkaTools, topics: dict[str, str], start_scorer: Callable[..., ScorerProcess]
) -> None:
    first, second = start_scorer(), start_scorer()
    first.wait_metrics()
    second.wait_metrics()
    time.sleep(8)  # let the group settle with both members before the events arrive
    events = synthetic_events(6000, seed=12)
    kafka.produce(topics["events"], _keyed(events))

    predictions = kafka.consume(topics["predictions"], len(events), timeout=120, idle=3.0)
    ids = Counter(orjson.loads(p.value or b"{}")["event_id"] for p in predictions)
    assert set(ids) == {e["event_id"] for e in events}
    consumed = [w.metric("churn_events_consumed_total") for w in (first, second)]
    assert all(c > 0 for c in consumed), f"one worker did nothing: {consumed}"
    assert sum(consumed) >= len(events)
    assert first.stop() == 0, first.tail()
    assert second.stop() == 0, second.tail()


def test_a_worker_killed_mid_stream_loses_nothing_after_restart(
    kafka: KafkaTools, topics: dict[str, str], start_scorer: Callable[..., ScorerProcess]
) -> None:
    events = synthetic_events(20_000, seed=13)
    kafka.produce(topics["events"], _keyed(events))
    scorer = start_scorer("--max-batch", "200")
    scorer.wait_metrics()
    scorer.wait_consumed(2000)
    scorer.kill()  # SIGKILL: no flush, no commit
    before = kafka.count(topics["predictions"])
    assert 0 < before < len(events), "the kill should land mid-stream"

    restarted = start_scorer("--max-batch", "200")
    predictions = kafka.consume(topics["predictions"], len(events), timeout=120, idle=3.0)
    ids = Counter(orjson.loads(p.value or b"{}")["event_id"] for p in predictions)
    missing = {e["event_id"] for e in events} - set(ids)
    assert not missing, f"{len(missing)} events lost"
    duplicates = sum(ids.values()) - len(ids)
    print(f"killed after {before} predictions; {duplicates} duplicates after restart")
    assert restarted.stop() == 0, restarted.tail()


def test_sigterm_mid_stream_finishes_the_batch_commits_and_exits_0(
    kafka: KafkaTools, topics: dict[str, str], start_scorer: Callable[..., ScorerProcess]
) -> None:
    events = synthetic_events(20_000, seed=14)
    kafka.produce(topics["events"], _keyed(events))
    scorer = start_scorer("--max-batch", "200")
    scorer.wait_metrics()
    scorer.wait_consumed(3000)
    asked = time.monotonic()
    assert scorer.stop(signal.SIGTERM, timeout=10) == 0, scorer.tail()  # raises after 10 s
    print(f"SIGTERM mid-stream: exited 0 after {time.monotonic() - asked:.2f} s")
    before = kafka.count(topics["predictions"])
    assert 0 < before < len(events), "the stop should land mid-stream"

    restarted = start_scorer("--max-batch", "200")
    predictions = kafka.consume(topics["predictions"], len(events), timeout=120, idle=3.0)
    ids = Counter(orjson.loads(p.value or b"{}")["event_id"] for p in predictions)
    assert set(ids) == {e["event_id"] for e in events}
    # A clean stop commits exactly what it delivered: the restarted worker re-scores nothing.
    assert sum(ids.values()) == len(events), f"{sum(ids.values()) - len(events)} duplicates"
    assert restarted.stop() == 0, restarted.tail()


def test_health_endpoints_follow_the_partition_assignment(
    kafka: KafkaTools, topics: dict[str, str], start_scorer: Callable[..., ScorerProcess]
) -> None:
    scorer = start_scorer()
    scorer.wait_metrics()
    scorer.wait_ready(timeout=90)
    status, body = scorer.health("ready")
    assert (status, body) == (200, {"status": "ready"})
    assert scorer.metric("churn_scorer_ready") == 1.0
    assert scorer.metric("churn_scorer_condition", condition="assignment") == 1.0
    status, body = scorer.health("live")
    assert status == 200
    assert body["status"] == "alive"
    kafka.produce(topics["events"], _keyed(synthetic_events(50, seed=5)))
    scorer.wait_consumed(50)
    assert scorer.health("ready")[0] == 200
    scorer.stop()
