"""Clients the project does not use publish raw telco rows and read the predictions.

A user's first step: take the rows of a telco CSV export exactly as
``csv.DictReader`` yields them (every value text, ``customerID``, no
``event_id``/``event_time``, the ``Churn`` label, a blank ``TotalCharges``) and
publish them with their own Kafka client, some keyed and a third not. Here that
client is kafka-python's producer; the predictions are read with aiokafka's
consumer (both pure-Python clients, neither used by churn-stream itself). Every
row must be predicted exactly once, with the probability ``churn predict``
gives for the same row, and an ``event_id`` (``topic:partition:offset``).
"""

from __future__ import annotations

import asyncio
import csv
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from kafka import KafkaProducer

from schemas.predictions import ChurnPrediction
from tests.support.kafka_tools import KafkaTools
from tests.support.scorer_process import CHURN, ScorerProcess
from training.data import to_telco_csv
from training.synthetic import generate

pytestmark = pytest.mark.integration

ROWS = 600


def _telco_file(path: Path) -> list[dict[str, str]]:
    """A telco CSV written as the public file is (" " TotalCharges, Churn), read back with DictReader."""
    frame = generate(ROWS, seed=404)
    frame.loc[frame.index[::40], ["tenure", "total_charges"]] = [0, float("nan")]  # brand-new customers
    to_telco_csv(frame, path)
    text = path.read_text()
    path.write_text(text.replace(",,", ", ,"))  # the public file writes the blank TotalCharges as " "
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == ROWS and sum(1 for r in rows if r["TotalCharges"] == " ") >= ROWS // 40
    return rows


def _publish(bootstrap: str, topic: str, rows: list[dict[str, str]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        sent = [
            producer.send(
                topic,
                key=None if i % 3 == 0 else row["customerID"].encode(),
                value=json.dumps(row).encode(),
            )
            for i, row in enumerate(rows)
        ]
        for future in sent:
            future.get(timeout=30)  # acknowledged by the broker
    finally:
        producer.close(timeout=10)


async def _read(bootstrap: str, topic: str, count: int, timeout: float, idle: float = 3.0) -> list[bytes]:
    """Every record of ``topic`` from the start, until ``count`` arrived and ``idle`` s passed quietly."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"independent-{time.monotonic_ns()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    try:
        while time.monotonic() < deadline and (len(values) < count or time.monotonic() - last < idle):
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                values += [record.value for record in records if record.value is not None]
                last = time.monotonic()
    finally:
        await consumer.stop()
    return values


def test_raw_telco_rows_from_an_independent_client_are_each_predicted_once(
    kafka: KafkaTools,
    kafka_bootstrap: str,
    topics: dict[str, str],
    start_scorer: Callable[..., ScorerProcess],
    model_store: Path,
    tmp_path: Path,
) -> None:
    source, scored = tmp_path / "telco.csv", tmp_path / "scored.csv"
    rows = _telco_file(source)
    subprocess.run(
        [CHURN, "predict", "--input", str(source), "--output", str(scored), "--store", str(model_store)],
        check=True,
        capture_output=True,
    )
    with scored.open() as handle:
        expected = {line["customerID"]: float(line["churn_probability"]) for line in csv.DictReader(handle)}

    scorer = start_scorer()
    _publish(kafka_bootstrap, topics["events"], rows)
    values = asyncio.run(_read(kafka_bootstrap, topics["predictions"], ROWS, timeout=120))

    predictions = [ChurnPrediction.model_validate_json(value) for value in values]
    by_customer = {p.customer_id: p for p in predictions}
    assert len(predictions) == len(by_customer) == ROWS, "each row predicted exactly once"
    assert set(by_customer) == set(expected)
    for customer, prediction in by_customer.items():
        assert abs(prediction.churn_probability - expected[customer]) <= 1e-6, customer
        topic, partition, offset = prediction.event_id.rsplit(":", 2)
        assert topic == topics["events"] and partition.isdigit() and offset.isdigit()
        assert prediction.event_time is not None  # the record's timestamp
    assert kafka.count(topics["dlq"]) == 0
    assert scorer.metric("churn_dead_letters_total") == 0
    assert scorer.stop() == 0, scorer.tail()
