"""Delivery failures against a real broker and a real `churn score`, both engines.

Retriable: a proxy in front of the broker holds the scorer's Produce requests (consuming
goes on), so its output cannot be acknowledged: the scorer retries, counts the retries,
turns not-ready (``delivery``) but stays live past the live timeout, and once the requests
flow again it delivers everything and turns ready. Permanent: a dead letter larger than
the producer accepts stops the worker with one clear error and exit code 3, with no offset
committed past the record; a restart with the default dead-letter limit scores everything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from devstack.broker import EmbeddedBroker
from devstack.ports import free_port
from producer.events import synthetic_events
from schemas.dead_letters import DeadLetter
from tests.support.kafka_proxy import KafkaProxy
from tests.support.kafka_tools import KafkaTools
from tests.support.scorer_process import ScorerProcess, scorer_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedBroker, KafkaProxy]]:
    """A broker of its own whose advertised address is a proxy in front of it."""
    port = free_port()
    proxy = KafkaProxy(("127.0.0.1", port)).start()
    broker = EmbeddedBroker(
        port=port, advertised=proxy.address, log_path=tmp_path_factory.mktemp("proxied") / "tansu.log"
    )
    broker.start()
    yield broker, proxy
    broker.stop()
    proxy.stop()


def _wait(condition: Callable[[], bool], timeout: float, what: str, scorer: ScorerProcess) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}\n{scorer.tail()}"
        time.sleep(0.2)


def _failing(scorer: ScorerProcess) -> dict[str, str]:
    status, body = scorer.health("ready")
    return dict(body.get("failing", {})) if status == 503 else {}  # type: ignore[call-overload]


def test_a_delivery_outage_makes_the_scorer_not_ready_but_live_and_nothing_is_lost(
    proxied: tuple[EmbeddedBroker, KafkaProxy], model_store: Path, engine: str, tmp_path: Path
) -> None:
    _broker, proxy = proxied
    kafka = KafkaTools(proxy.address)
    topics = {name: kafka.unique(name) for name in ("events", "predictions", "dlq")}
    kafka.create_topics(topics.values(), partitions=4)
    env = scorer_env(proxy.address, model_store, topics, kafka.unique("scorer"))
    env |= {
        "CHURN_DELIVERY_TIMEOUT_S": "2",
        "CHURN_DELIVERY_FAILING_AFTER_S": "1",
        "CHURN_DELIVERY_RETRY_BACKOFF_S": "0.2",
        "CHURN_DELIVERY_RETRY_BACKOFF_MAX_S": "1",
        "CHURN_SCORER_LIVE_TIMEOUT_S": "3",
    }
    scorer = ScorerProcess(env, tmp_path / "scorer.log", engine=engine)
    try:
        scorer.wait_ready(timeout=120)
        events = synthetic_events(300, seed=71)
        records = [(e["customer_id"].encode(), orjson.dumps(e)) for e in events]
        kafka.produce(topics["events"], records[:100])
        assert len(kafka.consume(topics["predictions"], 100, timeout=90)) >= 100

        proxy.hold("churn-scorer")  # the scorer's output producer; the consumer still fetches
        try:
            kafka.produce(topics["events"], records[100:])
            _wait(lambda: "delivery" in _failing(scorer), 60, "never reported delivery failing", scorer)
            assert "unacknowledged" in _failing(scorer)["delivery"]
            assert scorer.metric("churn_delivery_failing") == 1
            _wait(
                lambda: scorer.metric("churn_delivery_retries_total", reason="_MSG_TIMED_OUT") > 0,
                30,
                "no retry counted",
                scorer,
            )
            # Longer than the live timeout (3 s) while waiting on the broker: live, and not ready.
            for _ in range(12):
                assert scorer.health("live")[0] == 200, scorer.tail()
                assert "delivery" in _failing(scorer)
                time.sleep(0.5)
            assert scorer.running()
        finally:
            proxy.release()

        scorer.wait_ready(timeout=90)
        assert scorer.metric("churn_delivery_failing") == 0
        wanted = {e["event_id"] for e in events}
        seen: set[str] = set()
        deadline = time.monotonic() + 90
        while not wanted <= seen:  # at least once: duplicates are allowed, losses are not
            assert time.monotonic() < deadline, f"{len(wanted - seen)} events not predicted\n{scorer.tail()}"
            predictions = kafka.consume(topics["predictions"], len(wanted), timeout=10, idle=1.0)
            seen = {orjson.loads(p.value or b"{}")["event_id"] for p in predictions}
        log = scorer.log_path.read_text(errors="replace")
        assert "delivery failing" in log and "delivery recovered" in log
        assert scorer.stop() == 0, scorer.tail()
    finally:
        proxy.release()
        if scorer.running():
            scorer.kill()


def test_a_dead_letter_the_producer_refuses_stops_the_scorer_with_exit_3_and_commits_nothing_past_it(
    kafka: KafkaTools,
    kafka_bootstrap: str,
    model_store: Path,
    topics: dict[str, str],
    engine: str,
    tmp_path: Path,
) -> None:
    events = synthetic_events(600, seed=72)
    records = [(e["customer_id"].encode(), orjson.dumps(e)) for e in events]
    big = (b"big", b"x" * 999_800)  # not JSON; fits a default producer, its dead letter does not
    kafka.produce(topics["events"], [*records[:300], big, *records[300:]])
    [where] = [r for r in kafka.consume(topics["events"], 601, timeout=60) if r.key == b"big"]
    env = scorer_env(kafka_bootstrap, model_store, topics, kafka.unique("scorer"))

    # Misconfigured: a dead-letter limit above what the producer (message.max.bytes 1,000,000) takes.
    faulty = ScorerProcess(
        env | {"CHURN_DLQ_MAX_VALUE_BYTES": "2000000"}, tmp_path / "faulty.log", engine=engine
    )
    restarted: ScorerProcess | None = None
    try:
        assert faulty.process.wait(timeout=180) == 3, faulty.tail()
        log = faulty.log_path.read_text(errors="replace")
        # One line from the sink (Faust adds its own crash report after it), not a retry loop.
        errors = [line for line in log.splitlines() if "stopping without committing" in line]
        assert len(errors) == 1, log[-3000:]
        assert "failed permanently" in errors[0]
        assert topics["dlq"] in errors[0] and "MSG_SIZE_TOO_LARGE" in errors[0]
        assert "CHURN_DLQ_MAX_VALUE_BYTES" in errors[0]

        reader = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": env["CHURN_SCORER_APP_ID"]})
        try:
            [committed] = reader.committed([TopicPartition(topics["events"], where.partition)], timeout=10)
        finally:
            reader.close()
        assert committed.offset <= where.offset, (committed, where.offset)

        # With the default limit the dead letter is cut to fit: one of it, every event predicted.
        restarted = ScorerProcess(env, tmp_path / "restarted.log", engine=engine)
        predictions = kafka.consume(topics["predictions"], 600, timeout=120, idle=2.0)
        predicted = {orjson.loads(p.value or b"{}")["event_id"] for p in predictions}
        assert predicted == {e["event_id"] for e in events}, restarted.tail()
        [letter] = kafka.consume(topics["dlq"], 1, timeout=30, idle=2.0)
        meta = DeadLetter.from_headers(list(letter.headers.items()))
        assert (meta.truncated, meta.original_size) == (True, len(big[1]))
        assert letter.value == big[1][:900_000]
        assert restarted.stop() == 0, restarted.tail()
    finally:
        for process in (faulty, restarted):
            if process is not None and process.running():
                process.kill()
