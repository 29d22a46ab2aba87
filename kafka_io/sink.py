"""Produce a batch's output records and wait until the broker acknowledged every one.

The scorer writes through librdkafka (confluent-kafka) rather than Faust's
aiokafka producer: a ``produce`` call costs a couple of microseconds instead of
tens, which keeps writing the results cheap next to Faust's consume path. The
at-least-once rule lives here: :meth:`Delivery.wait` returns only when every
record was acknowledged (``acks=all``), so the caller never acknowledges input
whose output is not safely on the broker.

Successful deliveries are not reported one by one (``delivery.report.only.error``):
a Python callback per record would cost more than producing it. A batch is
acknowledged when the producer's queue has drained and no failure
was reported for it; callers therefore keep at most one batch in the producer
at a time (submit batch N+1 only after batch N's :meth:`Delivery.wait`).

A failed record is classified (:func:`classify`). A *retriable* failure (a broker
away, a leader moving, a record timed out in librdkafka's queue) is produced
again after a backoff that doubles up to a cap, counted through
:attr:`DeliveryHooks.on_retry`. A *permanent* one (a record larger than the
producer or topic accepts, no permission to write the topic, a bad argument) can
never succeed: :class:`PermanentDeliveryError` is raised after one ERROR line that
names the topic, the error and what to do, so that the worker stops before it
commits any offset past the failed record. While a batch has been unacknowledged
for longer than ``failing_after_s`` the sink tells :attr:`DeliveryHooks.on_failing`
(the scorer turns not-ready), and once it is delivered, that it recovered. Its
waiting loops call :attr:`DeliveryHooks.heartbeat`: a worker waiting out a broker
outage is not a wedged one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final, Literal

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from config.settings import Settings
from kafka_io.client_config import confluent_producer
from kafka_io.records import OutRecord

log = logging.getLogger(__name__)

Kind = Literal["retriable", "permanent"]

#: Errors that pass: the sink produces the record again (beside those librdkafka flags retriable).
RETRIABLE: Final = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,  # waited message.timeout.ms in the queue (broker away, slow)
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
        KafkaError._UNKNOWN_BROKER,
        KafkaError._QUEUE_FULL,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.BROKER_NOT_AVAILABLE,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        KafkaError.KAFKA_STORAGE_ERROR,
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.THROTTLING_QUOTA_EXCEEDED,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        # A topic the broker does not know (yet): an embedded broker that restarted empty, a
        # topic being created. The broker watch recreates the scorer's topics; if the topic
        # stays missing, the delivery keeps failing and readiness says so.
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._UNKNOWN_PARTITION,
        # The broker failed without saying why (the embedded broker does so in rare races).
        KafkaError.UNKNOWN,
    }
)

#: What to do about each permanent error; these and anything librdkafka calls fatal stop the worker.
ADVICE: Final[dict[int, str]] = {
    KafkaError.MSG_SIZE_TOO_LARGE: (
        "raise the producer's message.max.bytes and the topic's max.message.bytes, "
        "or lower CHURN_DLQ_MAX_VALUE_BYTES so that dead letters fit"
    ),
    KafkaError.RECORD_LIST_TOO_LARGE: "raise the topic's max.message.bytes or the broker's message.max.bytes",
    KafkaError.INVALID_RECORD: "the broker refused the record's format; check the topic's configuration",
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "grant the scorer's principal WRITE (and DESCRIBE) on the topic",
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: "grant the scorer's principal the cluster permission it needs",
    KafkaError.SASL_AUTHENTICATION_FAILED: "check CHURN_KAFKA_SASL_USERNAME and CHURN_KAFKA_SASL_PASSWORD",
    KafkaError._AUTHENTICATION: "check the Kafka credentials and TLS settings (docs/security.md)",
    KafkaError._SSL: "check the TLS settings (docs/security.md)",
    KafkaError._INVALID_ARG: "a producer option or record field is invalid; check the producer options",
    KafkaError.INVALID_REQUIRED_ACKS: "the producer's acks setting is not one the broker accepts",
    KafkaError.POLICY_VIOLATION: "a broker policy refused the record; check the topic's policies",
    KafkaError.UNSUPPORTED_VERSION: "the broker is too old for this client",
    KafkaError._FATAL: "librdkafka raised a fatal error; restart the scorer",
}


def classify(error: KafkaError) -> Kind:
    """Whether a failed delivery can succeed if the record is produced again."""
    code = error.code()
    if code in ADVICE or error.fatal():
        return "permanent"
    if code in RETRIABLE or error.retriable():
        return "retriable"
    # An error neither list knows: stopping (a restart re-scores from the last commit, nothing
    # is lost) beats retrying forever something that may never succeed.
    return "permanent"


class PermanentDeliveryError(RuntimeError):
    """A record the producer or broker will never accept; the worker must stop without committing it."""

    def __init__(self, topic: str, error: KafkaError) -> None:
        self.topic = topic
        self.error = error
        advice = ADVICE.get(error.code(), "see the broker's and the client's logs")
        super().__init__(f"delivery to {topic} failed permanently: {error.str()} ({error.name()}); {advice}")


def _ignore(*_args: Any) -> None:
    return None


@dataclass(frozen=True)
class DeliveryHooks:
    """Who hears about deliveries; the scorer's metrics and readiness (see ``scorer.engines``)."""

    #: ``(topic, reason, records)``: records produced again after a retriable failure.
    on_retry: Callable[[str, str, int], None] = _ignore
    #: ``(failing, reason)``: a batch unacknowledged past ``failing_after_s``, then delivered at last.
    on_failing: Callable[[bool, str], None] = _ignore
    #: Called from every waiting loop: the process is waiting, not wedged.
    heartbeat: Callable[[], None] = _ignore


@dataclass
class _Failures:
    records: list[tuple[str, OutRecord, KafkaError]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, topic: str, record: OutRecord, err: KafkaError) -> None:
        with self.lock:
            self.records.append((topic, record, err))

    def on_delivery(self, topic: str, record: OutRecord, err: KafkaError | None, _msg: Message) -> None:
        """A delivery report, sent for failed records only; the record is kept to be produced again.

        The record itself is kept, not rebuilt from the report: librdkafka's report carries
        no headers, and a dead letter without its reason headers would be worthless.
        """
        if err is None:  # not expected with delivery.report.only.error; nothing to do
            return
        self.add(topic, record, err)

    def take(self) -> list[tuple[str, OutRecord, KafkaError]]:
        with self.lock:
            taken, self.records = self.records, []
            return taken


class Delivery:
    """Output records on their way to the broker; :meth:`wait` returns once every one is acknowledged."""

    def __init__(self, sink: DeliverySink, failures: _Failures, total: int) -> None:
        self.sink = sink
        self.failures = failures
        self.total = total
        self.acked = 0
        self.submitted_at = sink.clock()

    def done(self) -> bool:
        """True once nothing is left in the producer: every record acknowledged or reported failed."""
        return len(self.sink._producer) == 0

    async def wait_async(self, interval_s: float = 0.001) -> int:
        """:meth:`wait` for an event loop: look at the queue every ``interval_s`` without blocking.

        No thread is involved while all goes well; only a failure (rare) hands over to
        :meth:`wait` in the loop's executor for the retries and their backoff.
        """
        sink = self.sink
        producer = sink._producer
        while len(producer) > 0:
            producer.poll(0)
            sink._check_failing(self.submitted_at, len(producer))
            await asyncio.sleep(interval_s)
        if self._failed():
            return await asyncio.get_running_loop().run_in_executor(None, self.wait)
        sink._delivered()
        self.acked = self.total
        return self.acked

    def _failed(self) -> bool:
        with self.failures.lock:
            return bool(self.failures.records)

    def wait(self) -> int:
        """Block until every record is acknowledged; retriable failures are produced again with backoff.

        Raises :class:`PermanentDeliveryError` for a record that can never be delivered.
        """
        sink = self.sink
        backoff = sink.retry_backoff_s
        failures, total = self.failures, self.total
        while True:
            sink._drain(self.submitted_at)
            failed = failures.take()
            self.acked += total - len(failed)
            if not failed:
                break
            for topic, _record, error in failed:
                if classify(error) == "permanent":
                    raise sink._permanent(topic, error)
            by_reason = Counter((topic, error.name()) for topic, _record, error in failed)
            for (topic, reason), count in by_reason.items():
                sink.hooks.on_retry(topic, reason, count)
            first_topic, _record, first_error = failed[0]
            log.warning(
                "delivery failed for %d records (first: topic=%s error=%s); producing them again in %.1f s",
                len(failed),
                first_topic,
                first_error.str(),
                backoff,
            )
            sink._last_error = f"{first_error.name()} on {first_topic}"
            sink._pause(backoff, self.submitted_at, len(failed))
            backoff = min(2 * backoff, sink.retry_backoff_max_s)
            failures = _Failures()
            total = len(failed)
            for topic, record, _error in failed:
                sink.produce(topic, [record], failures)
        sink._delivered()
        assert self.acked == self.total, (self.acked, self.total)
        return self.acked


#: How often :meth:`DeliverySink._drain` looks at the producer's queue. No delivery report wakes it
#: up when all goes well (only failures are reported), and ``flush`` looks only every 10 ms.
_DRAIN_POLL_S = 0.001


class DeliverySink:
    """A confluent-kafka producer with per-batch delivery confirmation.

    ``config`` adds to (or overrides) the producer's options; ``producer`` replaces the
    confluent-kafka producer itself (anything with its ``produce``/``poll``/``flush``/``len``).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        client_id: str = "churn-scorer",
        hooks: DeliveryHooks | None = None,
        producer: Any = None,
        clock: Callable[[], float] = time.monotonic,
        **config: Any,
    ) -> None:
        options = {
            "client.id": client_id,
            "linger.ms": 1,
            "delivery.report.only.error": True,
            "message.timeout.ms": int(settings.delivery_timeout_s * 1000),
            **config,
        }
        self._producer = (
            producer if producer is not None else Producer(confluent_producer(settings, **options))
        )
        self.retry_backoff_s = settings.delivery_retry_backoff_s
        self.retry_backoff_max_s = settings.delivery_retry_backoff_max_s
        self.failing_after_s = settings.delivery_failing_after_s
        self.hooks = hooks or DeliveryHooks()
        self.clock = clock
        self.failing = False
        self._last_error = ""

    def produce(self, topic: str, records: Sequence[OutRecord], failures: _Failures) -> None:
        """Hand ``records`` to the producer; a record it refuses at once counts as a failed delivery."""
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
                    self.hooks.heartbeat()
                except KafkaException as exc:  # refused before queueing, e.g. larger than message.max.bytes
                    error = exc.args[0]
                    if classify(error) == "permanent":
                        raise self._permanent(topic, error) from None
                    failures.add(topic, record, error)
                    break

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

    # -- waiting ---------------------------------------------------------------------------

    def _drain(self, since: float) -> None:
        """Block until the producer's queue is empty: every record acknowledged or reported failed."""
        producer = self._producer
        warn_at = self.clock() + 1.0
        while len(producer) > 0:
            producer.poll(_DRAIN_POLL_S)
            self.hooks.heartbeat()
            now = self.clock()
            self._check_failing(since, len(producer), now)
            if now > warn_at:
                log.warning("waiting for the broker to acknowledge %d records", len(producer))
                warn_at = now + 1.0

    def _pause(self, seconds: float, since: float, pending: int) -> None:
        """Sleep ``seconds`` before a retry, serving reports and beating meanwhile."""
        until = self.clock() + seconds
        while (left := until - self.clock()) > 0:
            self._producer.poll(min(left, 0.1))
            self.hooks.heartbeat()
            self._check_failing(since, pending)

    def _check_failing(self, since: float, pending: int, now: float | None = None) -> None:
        """Tell the hooks once when the batch submitted at ``since`` is overdue."""
        if self.failing:
            return
        waited = (now if now is not None else self.clock()) - since
        if waited > self.failing_after_s:
            self.failing = True
            last = self._last_error or "no error reported yet"
            reason = f"{pending} output records unacknowledged for {waited:.0f} s (last error: {last})"
            log.warning("delivery failing: %s", reason)
            self.hooks.on_failing(True, reason)

    def _delivered(self) -> None:
        self._last_error = ""
        if self.failing:
            self.failing = False
            log.info("delivery recovered: every output record is acknowledged again")
            self.hooks.on_failing(False, "")

    def _permanent(self, topic: str, error: KafkaError) -> PermanentDeliveryError:
        exc = PermanentDeliveryError(topic, error)
        log.error("%s; stopping without committing the failed batch or any after it", exc)
        return exc
