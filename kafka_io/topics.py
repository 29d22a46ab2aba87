"""Topic admin and the one reader of a whole topic: create missing topics, read a topic from its start."""

from __future__ import annotations

import logging
import time
from collections.abc import Generator

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from config.settings import Settings
from kafka_io.client_config import confluent_common, confluent_consumer

log = logging.getLogger(__name__)


def ensure_topics(settings: Settings, names: list[str] | None = None, timeout: float = 15.0) -> list[str]:
    """Create missing topics (events, predictions, DLQs, outcomes, shadow by default); the ones created."""
    wanted = names or [
        settings.events_topic,
        settings.predictions_topic,
        settings.dlq_topic,
        settings.outcomes_topic,
        settings.shadow_predictions_topic,
    ]
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


class MissingTopicError(LookupError):
    """The topic does not exist on the broker."""


def iter_topic(
    settings: Settings,
    topic: str,
    *,
    idle_s: float,
    timeout_s: float | None = None,
    client_id: str = "churn-topic-reader",
) -> Generator[Message, None, None]:
    """The records of ``topic`` from its start, as they arrive (confluent-kafka messages).

    Partitions are assigned directly: no consumer group, so no join to wait for and no
    offsets committed. Ends when nothing arrived for ``idle_s`` (the caller's time with a
    record counts as activity); raises :class:`TimeoutError` when still reading after
    ``timeout_s`` and :class:`MissingTopicError` when there is no such topic.
    """
    consumer = Consumer(confluent_consumer(settings, client_id, **{"client.id": client_id}))
    try:
        meta = consumer.list_topics(topic, timeout=10)
        if topic not in meta.topics or meta.topics[topic].error is not None:
            raise MissingTopicError(f"topic {topic} does not exist")
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.topics[topic].partitions])
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        last = time.monotonic()
        while time.monotonic() - last <= idle_s:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"still reading {topic} after {timeout_s:g} s")
            for message in consumer.consume(5000, timeout=0.2):
                if message.error() is not None:
                    log.warning("error reading %s: %s", topic, message.error())
                else:
                    yield message
                last = time.monotonic()
    finally:
        consumer.close()


def read_topic(
    settings: Settings, topic: str, *, idle_s: float, limit: int | None = None, timeout_s: float | None = None
) -> list[Message]:
    """The records of ``topic`` from its start (see :func:`iter_topic`), for audits and benchmarks.

    Reads until nothing arrived for ``idle_s``, ``limit`` records were read, or ``timeout_s``
    passed; a topic that does not exist has no records.
    """
    messages: list[Message] = []
    try:
        for message in iter_topic(settings, topic, idle_s=idle_s, timeout_s=timeout_s):
            messages.append(message)
            if limit is not None and len(messages) >= limit:
                break
    except (TimeoutError, MissingTopicError):
        pass
    return messages
