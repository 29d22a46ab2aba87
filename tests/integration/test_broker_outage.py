"""Broker outage: the embedded broker stops for 30 s; worker and producer ride it out and resume."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import orjson
import pytest

from devstack.broker import EmbeddedBroker
from producer.events import synthetic_events
from tests.support.kafka_tools import KafkaTools
from tests.support.scorer_process import CHURN, ScorerProcess, scorer_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 30.0


def test_worker_and_producer_survive_a_30_s_broker_outage(model_store: Path, tmp_path: Path) -> None:
    # A broker of its own (same port after the restart): the session broker must not go down.
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log").start()
    scorer: ScorerProcess | None = None
    producer: subprocess.Popen[bytes] | None = None
    try:
        kafka = KafkaTools(broker.bootstrap)
        topics = {"events": "outage-events", "predictions": "outage-predictions", "dlq": "outage-dlq"}
        kafka.create_topics(topics.values(), partitions=4)
        scorer = ScorerProcess(
            scorer_env(broker.bootstrap, model_store, topics, "outage"), tmp_path / "s.log"
        )
        scorer.wait_metrics()
        producer_log = (tmp_path / "producer.log").open("wb")
        producer = subprocess.Popen(
            [CHURN, "produce", "-b", broker.bootstrap, "--topic", topics["events"], "--rate", "100",
             "--count", "5000", "--seed", "5"],
            stdout=producer_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        first = kafka.consume(topics["predictions"], 300, timeout=60)
        assert len(first) >= 300, scorer.tail()
        assert scorer.metric("churn_broker_up") == 1

        broker.stop()
        went_down = time.monotonic()
        deadline = went_down + 20
        while scorer.metric("churn_broker_up") != 0:
            assert time.monotonic() < deadline, scorer.tail()
            time.sleep(0.5)
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - went_down)))
        assert scorer.running(), scorer.tail()
        assert producer.poll() is None, "the producer gave up during the outage"

        broker.start()  # same port; memory-only, so it comes back empty
        deadline = time.monotonic() + 60
        while scorer.metric("churn_broker_up") != 1:
            assert time.monotonic() < deadline, scorer.tail()
            time.sleep(0.5)
        kafka = KafkaTools(broker.bootstrap)
        # Let the running producer's backlog land first: Tansu can refuse one of two producers that
        # write the first batch of a freshly recreated partition at the same moment (AlreadyExists
        # on offset 0, "Unknown broker error" to the client) — a broker race, not the scorer's.
        assert len(kafka.consume(topics["predictions"], 20, timeout=60)) >= 20, scorer.tail()
        events = synthetic_events(500, seed=51)
        kafka.produce(topics["events"], [(e["customer_id"].encode(), orjson.dumps(e)) for e in events])
        wanted = {e["event_id"] for e in events}
        deadline = time.monotonic() + 120
        scored: set[str] = set()
        while not wanted <= scored:
            assert time.monotonic() < deadline, f"{len(wanted - scored)} not scored\n{scorer.tail()}"
            scored |= {
                orjson.loads(p.value or b"{}")["event_id"]
                for p in kafka.consume(topics["predictions"], 1, timeout=5, idle=1.0)
            }

        assert producer.wait(timeout=120) == 0, (tmp_path / "producer.log").read_text()
        log = scorer.log_path.read_text(errors="replace")
        assert log.count("unreachable: scorer not ready") == 1
        assert "reachable again" in log
        # aiokafka's error lines (~20 a second unthrottled) are cut to one of each kind per 10 s.
        errors = [line for line in log.splitlines() if "[ERROR]" in line]
        assert len(errors) <= 40, len(errors)
        assert scorer.stop() == 0, scorer.tail()
    finally:
        # Leave nothing running when an assertion failed half-way.
        if producer is not None and producer.poll() is None:
            producer.kill()
        if scorer is not None and scorer.running():
            scorer.kill()
        broker.stop()
