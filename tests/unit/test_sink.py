"""The sink hears about failed deliveries (and only those) and keeps the failed records to retry."""

from __future__ import annotations

import asyncio
import time

from config.settings import Settings
from devstack.ports import free_port
from kafka_io.records import OutRecord
from kafka_io.sink import DeliverySink


def _unreachable_sink() -> DeliverySink:
    """A sink whose broker is a closed port: every record fails after message.timeout.ms."""
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    return DeliverySink(settings, **{"message.timeout.ms": 300, "reconnect.backoff.max.ms": 100})


def test_a_failed_record_is_reported_with_its_bytes_and_headers() -> None:
    sink = _unreachable_sink()
    record = OutRecord(b"key", b'{"a":1}', [("event_id", b"e1")])
    delivery = sink.submit([("predictions", [record]), ("dlq", [])])
    assert delivery.total == 1
    deadline = time.monotonic() + 10
    while not delivery.done():
        assert time.monotonic() < deadline, "the record was never reported"
        sink._producer.poll(0.05)
    [(topic, kept, error)] = delivery.failures.records
    assert topic == "predictions"
    assert (kept.key, kept.value, kept.headers) == (record.key, record.value, record.headers)
    assert error  # librdkafka's reason, e.g. "Local: Message timed out"


def test_wait_async_hands_failures_to_the_retrying_wait() -> None:
    """With a failure reported, wait_async does not claim the batch acknowledged."""
    sink = _unreachable_sink()
    delivery = sink.submit([("predictions", [OutRecord(b"k", b"v", [])])])
    called: list[bool] = []

    def fake_wait() -> int:  # the real one retries until the broker is back: forever here
        called.append(True)
        return delivery.total

    delivery.wait = fake_wait  # type: ignore[method-assign]
    assert asyncio.run(delivery.wait_async()) == 1
    assert called == [True]
    assert len(delivery.failures.records) == 1
