"""Create the scorer's topics with the configured partitions if they are missing."""

from __future__ import annotations

import logging

from schemas.settings import Settings
from scorer.kafka_config import confluent_common

log = logging.getLogger(__name__)


def ensure_topics(settings: Settings, names: list[str] | None = None, timeout: float = 15.0) -> list[str]:
    """Create missing topics (events, predictions, DLQ by default); returns the ones created."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

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
