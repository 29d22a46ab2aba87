"""The producer API and `churn produce` against a real broker."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import datetime
from itertools import islice
from pathlib import Path

import orjson
import pytest

from config.settings import Settings
from producer.events import synthetic_events, synthetic_labelled_rows
from producer.publisher import publish
from schemas.events import CustomerEvent
from schemas.outcomes import CustomerOutcome
from tests.support.kafka_tools import KafkaTools
from tests.support.scorer_process import CHURN

pytestmark = pytest.mark.integration


def test_publish_keys_by_customer_and_reports_every_delivery(kafka: KafkaTools) -> None:
    topic = kafka.unique("produce")
    kafka.create_topics([topic], partitions=3)
    events = synthetic_events(500, seed=21)
    settings = Settings(kafka_bootstrap_servers=kafka.bootstrap)
    started = time.monotonic()
    stats = publish(events, settings, topic=topic, rate=1000)
    assert stats.ok
    assert (stats.sent, stats.acked, stats.failed) == (500, 500, 0)
    assert time.monotonic() - started >= 0.4  # the token bucket held ~1,000/s
    got = kafka.consume(topic, 500, timeout=30)
    assert len(got) == 500
    for record in got:
        event = CustomerEvent.model_validate_json(record.value or b"")
        assert record.key == event.customer_id.encode()


def test_publish_counts_failures_when_the_broker_is_unreachable() -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1")
    from producer.publisher import Publisher

    publisher = Publisher(settings, "nowhere", **{"message.timeout.ms": 1000})
    publisher.send(b"k", b"{}")
    publisher.flush(10)
    assert publisher.stats.failed == 1
    assert publisher.stats.acked == 0


def test_churn_produce_replays_a_csv(kafka: KafkaTools, tmp_path: Path) -> None:
    import pandas as pd

    from training.data import to_telco_csv

    frame = pd.DataFrame(synthetic_events(40, seed=22)).drop(columns=["event_id", "event_time"])
    csv = tmp_path / "telco.csv"
    to_telco_csv(frame, csv)
    topic = kafka.unique("replay")
    kafka.create_topics([topic], partitions=1)
    env = {**os.environ, "CHURN_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap}
    done = subprocess.run(
        [CHURN, "produce", "--csv", str(csv), "--rate", "500", "--topic", topic],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "published 40 events" in done.stdout
    got = kafka.consume(topic, 40, timeout=30)
    ids = [orjson.loads(r.value or b"{}")["customer_id"] for r in got]
    assert ids == list(frame["customer_id"])


def _churn_produce(kafka: KafkaTools, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHURN_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap}
    return subprocess.run([CHURN, "produce", *args], env=env, capture_output=True, text=True, timeout=90)


def test_churn_produce_outcomes_follows_each_event_with_its_label(kafka: KafkaTools) -> None:
    events, outcomes = kafka.unique("events"), kafka.unique("outcomes")
    kafka.create_topics([events], partitions=2)
    args = ["--count", "300", "--unlimited", "--seed", "5", "--topic", events, "--outcomes-topic", outcomes]
    done = _churn_produce(kafka, *args, "--outcomes", "--outcome-delay", "1", "--outcome-share", "0.5")
    assert done.returncode == 0, done.stdout + done.stderr
    got_events = kafka.consume(events, 300, timeout=30)
    got_outcomes = kafka.consume(outcomes, 1, timeout=30, idle=2)  # the topic is created by the command
    assert len(got_events) == 300
    assert 100 < len(got_outcomes) < 200  # about half the customers are observed
    assert f"of which {len(got_outcomes)} outcomes" in " ".join(done.stdout.split())
    labels = {row["customer_id"]: churned for row, churned in islice(synthetic_labelled_rows(seed=5), 300)}
    sent_at = {}
    for record in got_events:
        event = orjson.loads(record.value or b"{}")
        sent_at[event["customer_id"]] = datetime.fromisoformat(event["event_time"])
    for record in got_outcomes:
        outcome = CustomerOutcome.model_validate_json(record.value or b"")
        assert record.key == outcome.customer_id.encode()
        assert outcome.churned == labels[outcome.customer_id]  # the label the generator drew
        assert outcome.observed_at is not None
        delay = (outcome.observed_at - sent_at[outcome.customer_id]).total_seconds()
        assert 0.99 < delay < 1.5, delay  # --outcome-delay 1 after the event was stamped


def test_churn_produce_outcomes_only_publishes_real_labels(kafka: KafkaTools, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("customerID,Churn\n7590-VHVEG,No\n5575-GNVDE,Yes\n3668-QPYBK,Yes\n", encoding="utf-8")
    outcomes = kafka.unique("outcomes")
    done = _churn_produce(kafka, "--outcomes-only", "--csv", str(labels), "--outcomes-topic", outcomes)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "published 3 outcomes" in done.stdout
    got = kafka.consume(outcomes, 3, timeout=30)
    values = sorted((r.key, orjson.loads(r.value or b"{}")["churned"]) for r in got)
    assert values == [(b"3668-QPYBK", True), (b"5575-GNVDE", True), (b"7590-VHVEG", False)]
