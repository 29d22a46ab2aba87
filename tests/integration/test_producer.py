"""The producer API and `churn produce` against a real broker."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from config.settings import Settings
from producer.events import synthetic_events
from producer.publisher import publish
from schemas.events import CustomerEvent
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
