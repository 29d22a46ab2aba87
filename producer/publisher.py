"""Publish customer events (and their outcomes) to Kafka with confluent-kafka and delivery reports.

Events are keyed by ``customer_id`` (so one customer's events stay in order on
one partition) and serialized with orjson; so are outcomes, on their own topic.
:func:`publish` is the Python API; ``churn produce`` wraps it with a live progress line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer

from config.settings import Settings
from kafka_io.client_config import confluent_producer
from producer.outcomes import LabelledEvent, OutcomeSchedule
from producer.rate import TokenBucket
from schemas.events import CustomerEvent

log = logging.getLogger(__name__)


@dataclass
class PublishStats:
    sent: int = 0
    acked: int = 0
    failed: int = 0
    #: Of ``sent``, the outcome records (``churn produce --outcomes``).
    outcomes: int = 0
    #: Outcomes still waiting for their time when publishing stopped early (never sent).
    outcomes_unsent: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        """Acknowledged events per second so far."""
        return self.acked / max(self.seconds, 1e-9)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.acked == self.sent


def encode(event: CustomerEvent | dict[str, Any]) -> tuple[bytes, bytes]:
    """``(key, value)`` for one event: key = customer_id, value = wire JSON."""
    if isinstance(event, CustomerEvent):
        data: dict[str, Any] = event.model_dump(mode="json")
    else:
        data = event
    return str(data["customer_id"]).encode(), orjson.dumps(data)


class Publisher:
    """A confluent-kafka producer that counts acknowledgements and failures."""

    def __init__(self, settings: Settings, topic: str | None = None, **config: Any) -> None:
        self.topic = topic or settings.events_topic
        self.stats = PublishStats()
        self._lock = threading.Lock()
        # Keep retrying a record for up to 2 minutes: a broker outage shorter than that delays
        # events but loses none (librdkafka buffers and retries with backoff).
        options = {"client.id": "churn-producer", "message.timeout.ms": 120_000, **config}
        self._producer = Producer(confluent_producer(settings, **options))

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        with self._lock:
            if err is None:
                self.stats.acked += 1
            else:
                self.stats.failed += 1
                if len(self.stats.errors) < 10:
                    self.stats.errors.append(str(err))

    def send(self, key: bytes | None, value: bytes, topic: str | None = None) -> None:
        while True:
            try:
                self._producer.produce(
                    topic or self.topic, value=value, key=key, on_delivery=self._on_delivery
                )
                break
            except BufferError:  # local queue full: let deliveries drain
                self._producer.poll(0.05)
        self.stats.sent += 1
        self._producer.poll(0)

    def poll(self, timeout: float = 0.0) -> None:
        self._producer.poll(timeout)

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for outstanding deliveries; returns how many are still not reported."""
        remaining = int(self._producer.flush(timeout))
        self.stats.finished = time.monotonic()
        return remaining


def publish(
    events: Iterable[CustomerEvent | dict[str, Any] | LabelledEvent],
    settings: Settings,
    *,
    topic: str | None = None,
    rate: float | None = None,
    on_progress: Callable[[PublishStats], None] | None = None,
    progress_every: float = 0.25,
    stop: threading.Event | None = None,
    outcomes: OutcomeSchedule | None = None,
) -> PublishStats:
    """Publish ``events`` (at ``rate`` events/s if given); returns once every delivery is reported.

    With ``outcomes``, each :class:`LabelledEvent`'s outcome is scheduled when its event is
    sent and published on ``settings.outcomes_topic`` when due; after the last event,
    publishing waits for the outcomes still scheduled. Stops early when ``stop`` is set
    (outcomes not due yet are then counted in ``stats.outcomes_unsent``). ``stats.ok``
    tells whether every record was acknowledged.
    """
    publisher = Publisher(settings, topic)
    bucket = TokenBucket(rate) if rate else None
    next_report = time.monotonic() + progress_every

    def send_due_outcomes() -> None:
        if outcomes is None:
            return
        for outcome in outcomes.due(time.time()):
            key, value = encode(outcome)
            publisher.send(key, value, settings.outcomes_topic)
            publisher.stats.outcomes += 1

    def report() -> None:
        nonlocal next_report
        if on_progress is not None and time.monotonic() >= next_report:
            on_progress(publisher.stats)
            next_report = time.monotonic() + progress_every

    try:
        pending = iter(events)
        while stop is None or not stop.is_set():
            if bucket is not None:
                bucket.take()  # before the next event is made: a lazily stamped event_time is its send time
            send_due_outcomes()
            event = next(pending, None)
            if event is None:
                break
            if isinstance(event, LabelledEvent):
                key, value = encode(event.event)
                publisher.send(key, value)
                if outcomes is not None:
                    outcomes.add(str(event.event["customer_id"]), event.churned, time.time())
            else:
                key, value = encode(event)
                publisher.send(key, value)
            report()
        while outcomes is not None and len(outcomes) and (stop is None or not stop.is_set()):
            due = outcomes.next_due() or 0.0
            wait = min(max(due - time.time(), 0.0), 0.1)
            if stop is not None:
                stop.wait(wait)
            else:
                time.sleep(wait)
            publisher.poll(0)
            send_due_outcomes()
            report()
        if outcomes is not None:
            publisher.stats.outcomes_unsent = len(outcomes)
    finally:
        remaining = publisher.flush(40.0)  # > message.timeout.ms: every delivery gets reported
        if remaining:
            with publisher._lock:
                publisher.stats.failed += remaining
                publisher.stats.errors.append(f"{remaining} deliveries not reported within 40 s")
        if on_progress is not None:
            on_progress(publisher.stats)
    stats = publisher.stats
    log.info("published sent=%d acked=%d failed=%d", stats.sent, stats.acked, stats.failed)
    return stats
