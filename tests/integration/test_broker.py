"""The embedded broker and the test helpers against it."""

from __future__ import annotations

import pytest

from devstack.broker import BrokerError, EmbeddedBroker
from devstack.ports import port_open
from kafka_io.broker_watch import kafka_ready
from tests.support.kafka_tools import KafkaTools

pytestmark = pytest.mark.integration


def test_embedded_broker_starts_answers_and_stops() -> None:
    broker = EmbeddedBroker()
    with broker:
        assert broker.running()
        assert kafka_ready(broker.bootstrap)
        tools = KafkaTools(broker.bootstrap)
        topic = tools.unique("roundtrip")
        tools.create_topics([topic], partitions=2)
        assert tools.partitions(topic) == 2
        tools.produce(topic, [(b"k%d" % i, b"v%d" % i) for i in range(50)])
        got = tools.consume(topic, 50, timeout=30)
        assert sorted(r.value for r in got if r.value) == sorted(b"v%d" % i for i in range(50))
    assert not broker.running()
    assert not port_open(broker.host, broker.port)


def test_refuses_a_port_in_use() -> None:
    with EmbeddedBroker() as first, pytest.raises(BrokerError, match="already listens"):
        EmbeddedBroker(port=first.port).start()


def test_session_broker_fixture_works(kafka: KafkaTools) -> None:
    topic = kafka.unique("fixture")
    kafka.create_topics([topic], partitions=1)
    kafka.produce(topic, [(None, b"hello")])
    assert [r.value for r in kafka.consume(topic, 1, timeout=30)] == [b"hello"]


def test_churn_broker_command_serves_until_sigterm() -> None:
    import signal
    import subprocess
    import time

    from devstack.ports import free_port
    from tests.support.scorer_process import CHURN

    port = free_port()
    process = subprocess.Popen([CHURN, "broker", "--port", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not kafka_ready(f"127.0.0.1:{port}", timeout=1.0):
            assert process.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=20)
    assert code == 0
    assert not port_open("127.0.0.1", port)
