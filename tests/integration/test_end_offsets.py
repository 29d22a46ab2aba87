"""End offsets Faust's table recovery can trust, on the test broker (the embedded one answers short)."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from config.settings import Settings
from kafka_io.end_offsets import true_end_offsets
from tests.support.kafka_tools import KafkaTools

pytestmark = pytest.mark.integration


def _listed(bootstrap: str, topic: str, partitions: int) -> dict[tuple[str, int], int]:
    """What ListOffsets(latest) answers per partition, as Faust's recovery asks for it."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "end-offsets-test"})
    try:
        return {
            (topic, p): consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
            for p in range(partitions)
        }
    finally:
        consumer.close()


def test_end_offsets_count_every_record_of_the_last_batch(kafka: KafkaTools, kafka_bootstrap: str) -> None:
    topic = kafka.unique("end-offsets")
    kafka.create_topics([topic], partitions=3)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 200, "batch.num.messages": 1000})
    for p, count in ((0, 1), (1, 25)):  # partition 1: one batch of 25 records; partition 2 stays empty
        for i in range(count):
            producer.produce(topic, value=f"{p}-{i}".encode(), partition=p)
    assert producer.flush(30) == 0
    listed = _listed(kafka_bootstrap, topic, 3)
    # Kafka answers 25 for partition 1; the embedded Tansu broker answers the batch's base offset + 1.
    print(f"ListOffsets answered {listed}")
    assert listed[(topic, 1)] in (1, 25), listed
    corrected = true_end_offsets(Settings(kafka_bootstrap_servers=kafka_bootstrap), listed)
    assert corrected == {(topic, 0): 1, (topic, 1): 25, (topic, 2): 0}
