"""Produce a batch's output records and wait until the broker acknowledged every one.

The scorer writes through librdkafka (confluent-kafka) rather than Faust's
aiokafka producer: a ``produce`` call costs a couple of microseconds instead of
tens, which keeps writing the results cheap next to Faust's consume path. The
at-least-once rule lives here: :meth:`DeliverySink.deliver` returns only when
every record was acknowledged (``acks=all``); failed records are produced again
with backoff until they are, so the caller never acknowledges input whose
output is not safely on the broker.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.settings import Settings
from scorer.batch import OutRecord
from scorer.kafka_config import confluent_producer

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    failed: list[tuple[str, OutRecord, str]] = field(default_factory=list)
    acked: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_delivery(self, err: Any, msg: Any) -> None:
        """One delivery report; a failed record is rebuilt from the message to be produced again."""
        with self.lock:
            if err is None:
                self.acked += 1
            else:
                record = OutRecord(key=msg.key(), value=msg.value(), headers=list(msg.headers() or []))
                self.failed.append((msg.topic(), record, str(err)))


class Delivery:
    """Output records on their way to the broker; :meth:`wait` returns once every one is acknowledged."""

    def __init__(self, sink: DeliverySink, pending: _Pending, total: int) -> None:
        self.sink = sink
        self.pending = pending
        self.total = total
        self.acked = 0

    def done(self) -> bool:
        with self.pending.lock:
            return self.pending.acked + len(self.pending.failed) >= self.total

    def wait(self) -> int:
        """Block until every record is acknowledged; failed ones are produced again with backoff."""
        sink = self.sink
        producer = sink._producer
        attempt = 0
        pending, total = self.pending, self.total
        while True:
            while pending.acked + len(pending.failed) < total:
                if producer.poll(1.0) == 0 and pending.acked + len(pending.failed) < total:
                    log.warning("waiting for the broker to acknowledge %d records", len(producer))
            self.acked += pending.acked
            if not pending.failed:
                break
            attempt += 1
            first = pending.failed[0]
            log.error(
                "delivery failed for %d records (first: topic=%s error=%s); retry %d in %.1f s",
                len(pending.failed),
                first[0],
                first[2],
                attempt,
                sink.retry_backoff_s,
            )
            time.sleep(sink.retry_backoff_s)
            regrouped: dict[str, list[OutRecord]] = {}
            for topic, record, _ in pending.failed:
                regrouped.setdefault(topic, []).append(record)
            pending = _Pending()
            total = sum(len(r) for r in regrouped.values())
            for topic, records in regrouped.items():
                sink.produce(topic, records, pending)
        assert self.acked == self.total, (self.acked, self.total)
        return self.acked


class DeliverySink:
    """A confluent-kafka producer with per-batch delivery confirmation."""

    def __init__(self, settings: Settings, *, client_id: str = "churn-scorer", **config: Any) -> None:
        from confluent_kafka import Producer

        options = {"client.id": client_id, "linger.ms": 1, **config}
        self._producer = Producer(confluent_producer(settings, **options))
        self.retry_backoff_s = 0.5

    def produce(self, topic: str, records: Sequence[OutRecord], pending: _Pending) -> None:
        producer = self._producer
        report = pending.on_delivery  # one bound method for the batch, not a closure per record
        for record in records:
            while True:
                try:
                    producer.produce(
                        topic,
                        value=record.value,
                        key=record.key,
                        headers=record.headers,  # type: ignore[arg-type]
                        on_delivery=report,
                    )
                    break
                except BufferError:  # local queue full: serve delivery reports, then retry
                    producer.poll(0.01)

    def submit(self, batches: Sequence[tuple[str, Sequence[OutRecord]]]) -> Delivery:
        """Start producing ``(topic, records)`` groups; :meth:`Delivery.wait` blocks until all are acked.

        Lets a caller score the next batch while this one is on its way to the broker.
        """
        todo = [(topic, list(records)) for topic, records in batches if records]
        pending = _Pending()
        for topic, records in todo:
            self.produce(topic, records, pending)
        self._producer.poll(0)
        return Delivery(self, pending, sum(len(r) for _, r in todo))

    def deliver_blocking(self, batches: Sequence[tuple[str, Sequence[OutRecord]]]) -> int:
        """Produce ``(topic, records)`` groups and block until all are acknowledged; retries failures."""
        return self.submit(batches).wait()

    async def deliver(self, batches: Sequence[tuple[str, Sequence[OutRecord]]]) -> int:
        """:meth:`deliver_blocking` off the event loop (the loop keeps heartbeating)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.deliver_blocking, batches)

    def close(self, timeout: float = 10.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining:
            log.error("%d produced records were not acknowledged at close", remaining)
