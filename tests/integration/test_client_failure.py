"""An unexpected client error stops the scorer (non-zero exit); a restart then loses no event.

Bad input never stops a worker (it is dead-lettered). A client error is different: the
record cannot be written, so the worker must not acknowledge it or anything after it.
Here librdkafka itself refuses a record: the worker's producer is configured with
``message.max.bytes`` 1,000, and the dead letter of a 5,000-byte bad record is larger.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from producer.events import synthetic_events
from tests.support.kafka_tools import KafkaTools
from tests.support.scorer_process import ScorerProcess, scorer_env

pytestmark = pytest.mark.integration

#: A scorer whose producer refuses records above 1,000 bytes; engine from argv[1].
FAULTY_SCORER = """
import logging, sys
from config.settings import Settings
from kafka_io.sink import DeliverySink
from models.live import LiveModel
from models.registry import ModelRegistry
from monitoring.metrics import ScorerMetrics
from scorer.engines import build_engine

logging.basicConfig(level=logging.INFO)
settings = Settings(scorer_engine=sys.argv[1])
metrics = ScorerMetrics.create()
live = LiveModel.load(ModelRegistry(settings.model_store), events=metrics)
sink = DeliverySink(settings, **{"message.max.bytes": 1000})
build_engine(settings, live, metrics, sink=sink).serve()
"""


def test_a_client_error_stops_the_scorer_and_a_restart_scores_every_event(
    kafka: KafkaTools,
    kafka_bootstrap: str,
    model_store: Path,
    topics: dict[str, str],
    engine: str,
    tmp_path: Path,
) -> None:
    events = synthetic_events(1200, seed=21)
    records = [(e["customer_id"].encode(), orjson.dumps(e)) for e in events]
    big_bad = (b"big-bad", b"x" * 5000)  # not JSON: its dead letter keeps all 5,000 bytes
    kafka.produce(topics["events"], [*records[:600], big_bad, *records[600:]])

    env = scorer_env(kafka_bootstrap, model_store, topics, kafka.unique("scorer"))
    log_path = tmp_path / "faulty.log"
    with log_path.open("wb") as log:
        faulty = subprocess.run(
            [sys.executable, "-c", FAULTY_SCORER, engine],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=120,
        )
    output = log_path.read_text(errors="replace")
    assert faulty.returncode != 0, output[-3000:]
    assert "too large" in output.lower(), output[-3000:]

    restarted = ScorerProcess(env, tmp_path / "restarted.log", engine=engine)
    try:
        restarted.wait_metrics()
        restarted.wait_consumed(1, timeout=60)
        predictions = kafka.consume(topics["predictions"], len(events), timeout=90)
        predicted = {orjson.loads(p.value or b"{}")["event_id"] for p in predictions}
        assert predicted == {e["event_id"] for e in events}
        letters = kafka.consume(topics["dlq"], 1, timeout=30)
        assert [letter.value for letter in letters] == [big_bad[1]]
        assert restarted.running()
    finally:
        restarted.stop()
