"""Topic admin and the one reader of a whole topic: create missing topics, read a topic from its start."""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from config.settings import Settings
from kafka_io.client_config import confluent_common, confluent_consumer

log = logging.getLogger(__name__)


def ensure_topics(settings: Settings, names: list[str] | None = None, timeout: float = 15.0) -> list[str]:
    """Create missing topics (events, predictions, DLQ by default); returns the ones created."""
    wanted = names or [settings.events_topic, settings.predictions_topic, settings.dlq_topic]
    admin = AdminClient(confluent_common(settings))
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [n for n in wanted if n not in existing]
    if not missing:
        return []
    partitions, replicas = settings.topic_partitions, settings.topic_replication
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=partitions, replication_factor=replicas) for n in missing],
        request_timeout=timeout,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
            created.append(name)
            log.info("created topic %s partitions=%d", name, settings.topic_partitions)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # another worker won the race
                raise
    return created


def read_topic(
    settings: Settings, topic: str, *, idle_s: float, limit: int | None = None, timeout_s: float | None = None
) -> list[Any]:
    """The records of ``topic`` from its start (confluent-kafka messages), for audits and benchmarks.

    Partitions are assigned directly: no consumer group, so no join to wait for and no
    offsets committed. Reads until nothing arrived for ``idle_s``, ``limit`` records were
    read, or ``timeout_s`` passed.
    """
    consumer = Consumer(confluent_consumer(settings, "churn-topic-reader", **{"enable.auto.commit": False}))
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    messages: list[Any] = []
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last = time.monotonic()
    try:
        while time.monotonic() - last < idle_s and (limit is None or len(messages) < limit):
            if deadline is not None and time.monotonic() > deadline:
                break
            for message in consumer.consume(5000, timeout=0.2):
                if message.error() is None:
                    messages.append(message)
                    last = time.monotonic()
    finally:
        consumer.close()
    return messages
