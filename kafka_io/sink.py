"""Produce a batch's output records and wait until the broker acknowledged every one.

The scorer writes through librdkafka (confluent-kafka) rather than Faust's
aiokafka producer: a ``produce`` call costs a couple of microseconds instead of
tens, which keeps writing the results cheap next to Faust's consume path. The
at-least-once rule lives here: :meth:`Delivery.wait` returns only when every
record was acknowledged (``acks=all``); failed records are produced again with
backoff until they are, so the caller never acknowledges input whose output is
not safely on the broker.

Successful deliveries are not reported one by one (``delivery.report.only.error``):
a Python callback per record would cost more than producing it. A batch is
acknowledged when the producer's queue has drained and no failure
was reported for it; callers therefore keep at most one batch in the producer
at a time (submit batch N+1 only after batch N's :meth:`Delivery.wait`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from config.settings import Settings
from kafka_io.client_config import confluent_producer
from kafka_io.records import OutRecord

log = logging.getLogger(__name__)


@dataclass
class _Failures:
    records: list[tuple[str, OutRecord, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_delivery(self, topic: str, record: OutRecord, err: KafkaError | None, _msg: Message) -> None:
        """A delivery report, sent for failed records only; the record is kept to be produced again.

        The record itself is kept, not rebuilt from the report: librdkafka's report carries
        no headers, and a dead letter without its reason headers would be worthless.
        """
        if err is None:  # not expected with delivery.report.only.error; nothing to do
            return
        with self.lock:
            self.records.append((topic, record, str(err)))


class Delivery:
    """Output records on their way to the broker; :meth:`wait` returns once every one is acknowledged."""

    def __init__(self, sink: DeliverySink, failures: _Failures, total: int) -> None:
        self.sink = sink
        self.failures = failures
        self.total = total
        self.acked = 0

    def done(self) -> bool:
        """True once nothing is left in the producer: every record acknowledged or reported failed."""
        return len(self.sink._producer) == 0

    async def wait_async(self, interval_s: float = 0.001) -> int:
        """:meth:`wait` for an event loop: look at the queue every ``interval_s`` without blocking.

        No thread is involved while all goes well; only a failure (rare) hands over to
        :meth:`wait` in the loop's executor for the retries and their backoff.
        """
        producer = self.sink._producer
        while len(producer) > 0:
            producer.poll(0)
            await asyncio.sleep(interval_s)
        if self._failed():
            return await asyncio.get_running_loop().run_in_executor(None, self.wait)
        self.acked = self.total
        return self.acked

    def _failed(self) -> bool:
        with self.failures.lock:
            return bool(self.failures.records)

    def wait(self) -> int:
        """Block until every record is acknowledged; failed ones are produced again with backoff."""
        sink = self.sink
        producer = sink._producer
        attempt = 0
        failures, total = self.failures, self.total
        while True:
            _drain(producer)
            with failures.lock:
                failed = list(failures.records)
            self.acked += total - len(failed)
            if not failed:
                break
            attempt += 1
            log.error(
                "delivery failed for %d records (first: topic=%s error=%s); retry %d in %.1f s",
                len(failed),
                failed[0][0],
                failed[0][2],
                attempt,
                sink.retry_backoff_s,
            )
            time.sleep(sink.retry_backoff_s)
            regrouped: dict[str, list[OutRecord]] = {}
            for topic, record, _ in failed:
                regrouped.setdefault(topic, []).append(record)
            failures = _Failures()
            total = len(failed)
            for topic, records in regrouped.items():
                sink.produce(topic, records, failures)
        assert self.acked == self.total, (self.acked, self.total)
        return self.acked


#: How often :func:`_drain` looks at the producer's queue. No delivery report wakes it up when
#: all goes well (only failures are reported), and ``flush`` looks only every 10 ms.
_DRAIN_POLL_S = 0.001


def _drain(producer: Producer) -> None:
    """Block until the producer's queue is empty: every record acknowledged or reported failed."""
    warn_at = time.monotonic() + 1.0
    while len(producer) > 0:
        producer.poll(_DRAIN_POLL_S)
        if time.monotonic() > warn_at:
            log.warning("waiting for the broker to acknowledge %d records", len(producer))
            warn_at = time.monotonic() + 1.0


class DeliverySink:
    """A confluent-kafka producer with per-batch delivery confirmation."""

    def __init__(self, settings: Settings, *, client_id: str = "churn-scorer", **config: Any) -> None:
        options = {"client.id": client_id, "linger.ms": 1, "delivery.report.only.error": True, **config}
        self._producer = Producer(confluent_producer(settings, **options))
        self.retry_backoff_s = 0.5

    def produce(self, topic: str, records: Sequence[OutRecord], failures: _Failures) -> None:
        producer = self._producer
        report = failures.on_delivery
        for record in records:
            while True:
                try:
                    producer.produce(
                        topic,
                        value=record.value,
                        key=record.key,
                        headers=record.headers,  # type: ignore[arg-type]
                        on_delivery=partial(report, topic, record),
                    )
                    break
                except BufferError:  # local queue full: serve delivery reports, then retry
                    producer.poll(0.01)

    def submit(self, batches: Sequence[tuple[str, Sequence[OutRecord]]]) -> Delivery:
        """Start producing ``(topic, records)`` groups; :meth:`Delivery.wait` blocks until all are acked.

        Lets a caller score the next batch while this one is on its way to the broker; submit
        that batch only after this one's :meth:`Delivery.wait` (see the module docstring).
        """
        failures = _Failures()
        total = 0
        for topic, records in batches:
            if records:
                self.produce(topic, records, failures)
                total += len(records)
        return Delivery(self, failures, total)

    def close(self, timeout: float = 10.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining:
            log.error("%d produced records were not acknowledged at close", remaining)
