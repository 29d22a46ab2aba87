"""The sink's failure handling, against a scripted producer: retries, permanent errors, failing state.

The scripted producer stands in for librdkafka only where a broker cannot be made to fail on
cue in a unit test; ``tests/integration/test_delivery_faults.py`` runs the same paths against a
real broker.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from config.settings import Settings
from kafka_io.records import OutRecord
from kafka_io.sink import DeliveryHooks, DeliverySink, PermanentDeliveryError, classify

#: What happens to the n-th produce call (1-based) of ``topic``: None = acknowledged after
#: ``ack_after_s``, a KafkaError = reported failed, an exception = raised by ``produce`` itself.
Script = Callable[[int, str], KafkaError | BaseException | None]


class ScriptedProducer:
    """Just enough of confluent_kafka.Producer: produce, poll, flush, len; time passes in poll."""

    def __init__(self, script: Script, ack_after_s: float = 0.0) -> None:
        self.script = script
        self.ack_after_s = ack_after_s
        self.now = 0.0
        self.produced: list[tuple[str, bytes | None, bytes | None, Any]] = []
        self._queue: list[tuple[float, Any, KafkaError | None]] = []

    def clock(self) -> float:
        return self.now

    def produce(self, topic: str, *, value: Any, key: Any, headers: Any, on_delivery: Any) -> None:
        self.produced.append((topic, key, value, headers))
        outcome = self.script(len(self.produced), topic)
        if isinstance(outcome, BaseException):
            raise outcome
        self._queue.append((self.now + self.ack_after_s, on_delivery, outcome))

    def poll(self, timeout: float = 0.0) -> int:
        self.now += max(timeout, 0.0005)
        due = [q for q in self._queue if q[0] <= self.now]
        self._queue = [q for q in self._queue if q[0] > self.now]
        for _at, on_delivery, error in due:
            if error is not None:  # delivery.report.only.error: successes are silent
                on_delivery(error, None)
        return len(due)

    def flush(self, timeout: float = 0.0) -> int:
        while self._queue:
            self.poll(0.01)
        return 0

    def __len__(self) -> int:
        return len(self._queue)


class Heard:
    """What the hooks were told."""

    def __init__(self) -> None:
        self.retries: list[tuple[str, str, int]] = []
        self.failing: list[tuple[bool, str]] = []
        self.beats = 0

    def hooks(self) -> DeliveryHooks:
        def beat() -> None:
            self.beats += 1

        return DeliveryHooks(
            on_retry=lambda *a: self.retries.append(a),
            on_failing=lambda *a: self.failing.append(a),
            heartbeat=beat,
        )


def _sink(producer: ScriptedProducer, heard: Heard, **settings: Any) -> DeliverySink:
    options = {"delivery_retry_backoff_s": 0.5, "delivery_retry_backoff_max_s": 2.0} | settings
    return DeliverySink(Settings(**options), producer=producer, hooks=heard.hooks(), clock=producer.clock)


RECORDS = [OutRecord(b"k%d" % i, b"v%d" % i, [("error_type", b"x"), ("n", b"%d" % i)]) for i in range(3)]


def test_a_retriable_failure_is_produced_again_with_its_headers_and_counted() -> None:
    timed_out = KafkaError(KafkaError._MSG_TIMED_OUT)
    producer = ScriptedProducer(lambda n, topic: timed_out if n == 2 else None)
    heard = Heard()
    delivery = _sink(producer, heard).submit([("dlq", RECORDS)])
    assert delivery.wait() == 3
    assert [p[1] for p in producer.produced] == [b"k0", b"k1", b"k2", b"k1"]  # k1 again, once
    assert producer.produced[3] == ("dlq", b"k1", b"v1", RECORDS[1].headers)
    assert heard.retries == [("dlq", "_MSG_TIMED_OUT", 1)]
    assert heard.beats > 0
    assert heard.failing == []  # delivered well within failing_after_s
    assert delivery.acked == delivery.total == 3


def test_retries_back_off_exponentially_up_to_the_cap() -> None:
    down = KafkaError(KafkaError._TRANSPORT)
    attempts: list[float] = []
    producer = ScriptedProducer(lambda n, topic: attempts.append(producer.now) or (down if n <= 5 else None))
    sink = _sink(producer, Heard())
    assert sink.submit([("p", RECORDS[:1])]).wait() == 1
    gaps = [round(b - a, 1) for a, b in itertools.pairwise(attempts)]
    assert gaps == [0.5, 1.0, 2.0, 2.0, 2.0]


def test_a_record_the_producer_refuses_at_once_with_a_retriable_error_is_retried() -> None:
    unknown = KafkaException(KafkaError(KafkaError._UNKNOWN_TOPIC))
    producer = ScriptedProducer(lambda n, topic: unknown if n == 1 else None)
    heard = Heard()
    assert _sink(producer, heard).submit([("p", RECORDS[:2])]).wait() == 2
    assert heard.retries == [("p", "_UNKNOWN_TOPIC", 1)]
    assert len(producer.produced) == 3


def test_a_permanent_failure_report_stops_with_one_clear_error_and_no_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    too_large = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)
    producer = ScriptedProducer(lambda n, topic: too_large if n == 3 else None)
    heard = Heard()
    delivery = _sink(producer, heard).submit([("dlq", RECORDS)])
    with (
        caplog.at_level(logging.ERROR, logger="kafka_io.sink"),
        pytest.raises(PermanentDeliveryError) as raised,
    ):
        delivery.wait()
    assert raised.value.topic == "dlq"
    assert len(producer.produced) == 3  # not produced again
    assert heard.retries == []
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "dlq" in line and "MSG_SIZE_TOO_LARGE" in line and "CHURN_DLQ_MAX_VALUE_BYTES" in line
    assert "without committing" in line


def test_a_record_the_producer_refuses_at_once_as_too_large_stops_at_submit() -> None:
    too_large = KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    producer = ScriptedProducer(lambda n, topic: too_large if topic == "dlq" else None)
    sink = _sink(producer, Heard())
    with pytest.raises(PermanentDeliveryError, match="message.max.bytes"):
        sink.submit([("predictions", RECORDS[:2]), ("dlq", RECORDS[2:])])


def test_a_full_local_queue_is_served_and_the_record_produced() -> None:
    full = [BufferError("queue full"), BufferError("queue full")]
    producer = ScriptedProducer(lambda n, topic: full.pop() if n <= 2 else None)
    heard = Heard()
    assert _sink(producer, heard).submit([("p", RECORDS[:1])]).wait() == 1
    assert len(producer.produced) == 3
    assert heard.beats >= 2


def test_a_batch_unacknowledged_past_the_limit_is_failing_until_delivered() -> None:
    producer = ScriptedProducer(lambda n, topic: None, ack_after_s=7.0)
    heard = Heard()
    sink = _sink(producer, heard, delivery_failing_after_s=5.0)
    assert sink.submit([("p", RECORDS)]).wait() == 3
    assert [f[0] for f in heard.failing] == [True, False]
    assert "3 output records unacknowledged for 5 s" in heard.failing[0][1]
    assert not sink.failing
    # The next batch, on time, says nothing.
    producer.ack_after_s = 0.0
    assert sink.submit([("p", RECORDS)]).wait() == 3
    assert len(heard.failing) == 2


def test_the_failing_limit_is_exact() -> None:
    producer = ScriptedProducer(lambda n, topic: None, ack_after_s=4.9)
    heard = Heard()
    sink = _sink(producer, heard, delivery_failing_after_s=5.0)
    sink.submit([("p", RECORDS)]).wait()
    assert heard.failing == []


def test_wait_async_reports_failing_and_recovery_too() -> None:
    producer = ScriptedProducer(lambda n, topic: None, ack_after_s=0.2)
    heard = Heard()
    sink = _sink(producer, heard, delivery_failing_after_s=0.1)
    assert asyncio.run(sink.submit([("p", RECORDS)]).wait_async(interval_s=0)) == 3
    assert [f[0] for f in heard.failing] == [True, False]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (KafkaError(KafkaError._MSG_TIMED_OUT), "retriable"),
        (KafkaError(KafkaError._TRANSPORT), "retriable"),
        (KafkaError(KafkaError._ALL_BROKERS_DOWN), "retriable"),
        (KafkaError(KafkaError.NOT_ENOUGH_REPLICAS), "retriable"),
        (KafkaError(KafkaError.LEADER_NOT_AVAILABLE), "retriable"),
        (KafkaError(KafkaError.REQUEST_TIMED_OUT), "retriable"),
        (KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART), "retriable"),
        (KafkaError(12345, "a code nobody knows", retriable=True), "retriable"),
        (KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), "permanent"),
        (KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED), "permanent"),
        (KafkaError(KafkaError._INVALID_ARG), "permanent"),
        (KafkaError(KafkaError.RECORD_LIST_TOO_LARGE), "permanent"),
        (KafkaError(KafkaError.INVALID_RECORD), "permanent"),
        (KafkaError(KafkaError.LEADER_NOT_AVAILABLE, fatal=True), "permanent"),
        (KafkaError(12345, "a code nobody knows"), "permanent"),
    ],
    ids=lambda v: v if isinstance(v, str) else v.name(),
)
def test_classification(error: KafkaError, kind: str) -> None:
    assert classify(error) == kind


# -- exact limits and what the hooks and errors say -------------------------------------------------


def test_failing_is_reported_only_past_the_limit_and_says_what_is_pending_and_why() -> None:
    heard = Heard()
    sink = _sink(ScriptedProducer(lambda n, topic: None), heard, delivery_failing_after_s=5.0)
    sink._check_failing(since=10.0, pending=4, now=15.0)  # exactly at the limit: not yet
    assert heard.failing == []
    sink._check_failing(since=10.0, pending=4, now=15.5)
    assert heard.failing == [
        (True, "4 output records unacknowledged for 6 s (last error: no error reported yet)")
    ]
    sink._check_failing(since=10.0, pending=4, now=30.0)
    assert len(heard.failing) == 1  # told once


def test_after_a_recovery_the_next_failing_report_does_not_repeat_the_old_error() -> None:
    timed_out = KafkaError(KafkaError._MSG_TIMED_OUT)
    producer = ScriptedProducer(lambda n, topic: timed_out if n == 1 else None)
    heard = Heard()
    sink = _sink(producer, heard, delivery_failing_after_s=0.2)
    assert sink.submit([("dlq", RECORDS[:1])]).wait() == 1
    assert heard.failing[0][0] is True
    assert "last error: _MSG_TIMED_OUT on dlq" in heard.failing[0][1]
    assert heard.failing[-1] == (False, "")
    assert sink.failing is False
    sink._check_failing(since=producer.now, pending=1, now=producer.now + 1.0)
    assert heard.failing[-1][1].endswith("(last error: no error reported yet)")


def test_a_batch_over_several_topics_is_acknowledged_as_a_whole() -> None:
    producer = ScriptedProducer(lambda n, topic: None)
    delivery = _sink(producer, Heard()).submit(
        [("predictions", RECORDS[:2]), ("dlq", []), ("dlq", RECORDS[2:])]
    )
    assert delivery.total == 3
    assert delivery.wait() == 3


def test_a_record_refused_at_produce_names_its_topic_and_error() -> None:
    too_large = KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    sink = _sink(ScriptedProducer(lambda n, topic: too_large), Heard())
    with pytest.raises(PermanentDeliveryError) as raised:
        sink.submit([("dlq", RECORDS[:1])])
    assert raised.value.topic == "dlq"
    assert raised.value.error.code() == KafkaError.MSG_SIZE_TOO_LARGE


def test_a_permanent_error_without_advice_points_at_the_logs() -> None:
    error = KafkaError(KafkaError.INVALID_PARTITIONS)
    exc = PermanentDeliveryError("predictions", error)
    assert exc.error is error
    assert str(exc).startswith("delivery to predictions failed permanently: ")
    assert str(exc).endswith("; see the broker's and the client's logs")


def test_the_producer_reports_failures_only_and_times_out_records_at_the_delivery_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr("kafka_io.sink.Producer", lambda options: seen.append(options) or object())
    DeliverySink(Settings(delivery_timeout_s=7.5))
    [options] = seen
    assert options["delivery.report.only.error"] is True
    assert options["message.timeout.ms"] == 7500
    assert options["client.id"] == "churn-scorer"
    assert options["linger.ms"] == 1


def test_the_log_says_what_failed_what_recovered_and_what_is_left_at_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    timed_out = KafkaError(KafkaError._MSG_TIMED_OUT)
    producer = ScriptedProducer(lambda n, topic: timed_out if n == 1 else None)
    sink = _sink(producer, Heard(), delivery_failing_after_s=0.2)
    with caplog.at_level(logging.INFO, logger="kafka_io.sink"):
        sink.submit([("dlq", RECORDS[:1])]).wait()
        producer.flush = lambda timeout=0.0: 2  # type: ignore[method-assign]
        sink.close(timeout=0.1)
        with pytest.raises(PermanentDeliveryError):
            raise sink._permanent("predictions", KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    lines = [r.getMessage() for r in caplog.records]
    assert any(
        line.startswith("delivery failed for 1 records (first: topic=dlq error=Local: Message timed out)")
        for line in lines
    ), lines
    assert any(line.startswith("delivery failing: 1 output records unacknowledged for") for line in lines), (
        lines
    )
    assert "delivery recovered: every output record is acknowledged again" in lines
    assert "2 produced records were not acknowledged at close" in lines
    assert any(
        line.startswith("delivery to predictions failed permanently")
        and line.endswith("; stopping without committing the failed batch or any after it")
        for line in lines
    ), lines
