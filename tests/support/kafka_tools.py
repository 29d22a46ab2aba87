"""Test helpers around a real broker: unique topics, produce, consume until a count."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic


@dataclass(frozen=True)
class Consumed:
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    topic: str
    partition: int
    offset: int


class KafkaTools:
    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    def create_topics(self, names: Iterable[str], partitions: int = 4) -> None:
        futures = self.admin.create_topics(
            [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
        )
        for future in futures.values():
            future.result(timeout=15)

    def partitions(self, topic: str) -> int:
        meta = self.admin.list_topics(topic, timeout=10)
        return len(meta.topics[topic].partitions)

    def produce(
        self,
        topic: str,
        records: Iterable[tuple[bytes | None, bytes | None]],
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> int:
        """Produce (key, value) pairs (to ``partition`` if given); returns how many the broker
        acknowledged (raises otherwise)."""
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5, "acks": "all"})
        return _deliver_all(producer, topic, records, headers, partition, flush_s=30)

    def produce_one_per_batch(
        self, topic: str, partition: int, records: Iterable[tuple[bytes, bytes]]
    ) -> int:
        """Produce (key, value) pairs to one partition, each record in a record batch of its own."""
        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "linger.ms": 0,
                "batch.num.messages": 1,
                "acks": "all",
                "enable.idempotence": False,
                "queue.buffering.max.messages": 1_000_000,
            }
        )
        return _deliver_all(producer, topic, records, None, partition, flush_s=120)

    def high_watermark(self, topic: str, partition: int) -> int:
        from confluent_kafka import TopicPartition

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.unique("watermark")})
        try:
            _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
            return int(high)
        finally:
            consumer.close()

    def count(self, topic: str) -> int:
        """Records in ``topic`` now (sum of high watermarks minus low watermarks)."""
        from confluent_kafka import TopicPartition

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.unique("counter")})
        try:
            total = 0
            for partition in range(self.partitions(topic)):
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                total += high - low
            return total
        finally:
            consumer.close()

    def consume(
        self,
        topic: str,
        count: int,
        timeout: float = 60.0,
        idle: float | None = None,
    ) -> list[Consumed]:
        """Read ``topic`` from the beginning until ``count`` records arrived or ``timeout`` passed.

        With ``idle`` set, keep reading after ``count`` until nothing arrives for ``idle`` seconds
        (to catch records beyond the expected count).
        """
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": self.unique("reader"),
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 1000,
            }
        )
        consumer.subscribe([topic])
        out: list[Consumed] = []
        deadline = time.monotonic() + timeout
        last_seen = time.monotonic()
        try:
            while time.monotonic() < deadline:
                if len(out) >= count and (idle is None or time.monotonic() - last_seen > idle):
                    break
                batch = consumer.consume(1000, timeout=0.5)
                for msg in batch:
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            continue
                        raise RuntimeError(str(err))
                    out.append(
                        Consumed(
                            key=msg.key(),
                            value=msg.value(),
                            headers={k: v for k, v in (msg.headers() or [])},
                            topic=msg.topic(),
                            partition=msg.partition(),
                            offset=msg.offset(),
                        )
                    )
                    last_seen = time.monotonic()
        finally:
            consumer.close()
        return out


def _deliver_all(
    producer: Producer,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
    headers: list[tuple[str, bytes]] | None,
    partition: int | None,
    flush_s: float,
) -> int:
    """Produce every record, waiting out a full local queue; assert the broker acknowledged all."""
    failures: list[Any] = []
    sent = 0

    def report(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(err)

    where = {} if partition is None else {"partition": partition}
    for key, value in records:
        while True:
            try:
                producer.produce(topic, key=key, value=value, headers=headers, on_delivery=report, **where)
                break
            except BufferError:
                producer.poll(0.05)
        sent += 1
        producer.poll(0)
    remaining = producer.flush(flush_s)
    assert remaining == 0, f"{remaining} records not delivered"
    assert not failures, failures[:3]
    return sent
