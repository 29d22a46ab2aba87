"""The second runtime: a plain confluent-kafka consume -> score -> produce -> commit loop.

Same batch core, same sink, same metrics and the same at-least-once rule as the
Faust worker (offsets are committed only after every output record of the
batch is acknowledged). It exists as the practical throughput ceiling for
``churn bench stream`` and as a lean alternative runtime.
"""

from __future__ import annotations

import logging
import threading

from schemas.settings import Settings
from scorer.batch import RawRecord
from scorer.kafka_config import confluent_consumer
from scorer.runtime import BatchHandler

log = logging.getLogger(__name__)


def run_plain(
    settings: Settings,
    handler: BatchHandler,
    *,
    group_id: str | None = None,
    stop: threading.Event | None = None,
    max_events: int | None = None,
) -> int:
    """Consume until ``stop`` is set or ``max_events`` were handled; returns the events handled."""
    from confluent_kafka import Consumer, KafkaError

    consumer = Consumer(
        confluent_consumer(
            settings,
            group_id or settings.scorer_app_id,
            **{"enable.partition.eof": False, "client.id": "churn-scorer-plain"},
        )
    )
    consumer.subscribe([settings.events_topic])
    handled = 0
    try:
        while not (stop is not None and stop.is_set()):
            if max_events is not None and handled >= max_events:
                break
            messages = consumer.consume(settings.scorer_max_batch, timeout=settings.scorer_max_wait_s)
            records = []
            for m in messages:
                error = m.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("consumer error: %s", error)
                    continue
                records.append(
                    RawRecord(
                        value=m.value(),
                        key=m.key(),
                        topic=m.topic() or settings.events_topic,
                        partition=m.partition() or 0,
                        offset=m.offset() or 0,
                        timestamp=m.timestamp()[1] / 1000,
                    )
                )
            if not records:
                continue
            handler.handle_blocking(records)
            consumer.commit(asynchronous=False)  # only after the outputs were acknowledged
            handled += len(records)
    finally:
        consumer.close()
    return handled
