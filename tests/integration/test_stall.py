"""A partition the embedded broker stops serving: the broker's behaviour, and each engine recovering from it.

The embedded Tansu broker lists every record batch of a partition on each fetch and
answers a fetch whose ``max_wait`` runs out during that listing with an empty
partition (error 0, the right high watermark): once a partition holds more batches
than the wait allows, every fetch at that wait comes back empty, for good
(docs/streaming.md, "The embedded broker's fetch limit"). Preloading a partition with
single-record batches reproduces it in seconds: the first test proves the broker
behaves so; the others run ``churn score`` (each engine) with a short fetch wait on
that partition and check that the stall is detected within the configured time,
reported (metric, readiness) and recovered without losing a record.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from devstack.processes import ScorerProcess
from producer.events import synthetic_events
from tests.support.kafka_tools import KafkaTools
from tests.support.scorer_process import scorer_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Single-record batches in the stalled partition: a 2 ms fetch wait cannot list them (the
#: limit was ~4,000 batches at 2 ms on the 2-core development VM), a 32 ms one can (~40,000).
BATCHES = 20_000
#: Records in each of the other three partitions, produced normally (few batches).
OTHERS = 300
#: The scorer's stall window in these tests.
STALL_AFTER_S = 6.0


@pytest.fixture(scope="module")
def long_partition(kafka: KafkaTools, broker_kind: str) -> tuple[str, list[str]]:
    """A 4-partition events topic whose partition 0 holds BATCHES single-record batches."""
    if broker_kind != "embedded":
        pytest.skip(f"the fetch limit is the embedded broker's; this session runs on a {broker_kind} broker")
    topic = kafka.unique("stall-events")
    kafka.create_topics([topic], partitions=4)
    events = synthetic_events(BATCHES + 3 * OTHERS, seed=17)
    stalled, rest = events[:BATCHES], events[BATCHES:]
    kafka.produce_one_per_batch(topic, 0, ((e["customer_id"].encode(), orjson.dumps(e)) for e in stalled))
    for partition in (1, 2, 3):
        chunk = rest[(partition - 1) * OTHERS : partition * OTHERS]
        kafka.produce(
            topic, [(e["customer_id"].encode(), orjson.dumps(e)) for e in chunk], partition=partition
        )
    assert kafka.high_watermark(topic, 0) == BATCHES
    return topic, [e["event_id"] for e in events]


def _first_record_within(bootstrap: str, topic: str, wait_ms: int, seconds: float) -> float | None:
    """Seconds until a plain consumer with ``fetch.wait.max.ms=wait_ms`` reads partition 0 from offset 0."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"probe-{wait_ms}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": wait_ms,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                return time.monotonic() - started
        return None
    finally:
        consumer.close()


def test_the_embedded_broker_answers_short_fetches_of_a_long_partition_with_nothing(
    kafka_bootstrap: str, long_partition: tuple[str, list[str]]
) -> None:
    topic, _ = long_partition
    # A 2 ms wait: every fetch comes back empty while the high watermark says 20,000 records wait.
    assert _first_record_within(kafka_bootstrap, topic, wait_ms=2, seconds=8.0) is None
    # The same fetch with a 500 ms wait (librdkafka's default) gets them.
    arrived = _first_record_within(kafka_bootstrap, topic, wait_ms=500, seconds=30.0)
    assert arrived is not None


@pytest.mark.parametrize("engine", ["native", "faust"])
def test_a_stalled_partition_is_detected_reported_and_recovered_without_loss(
    engine: str,
    kafka: KafkaTools,
    kafka_bootstrap: str,
    model_store: Path,
    long_partition: tuple[str, list[str]],
    tmp_path: Path,
) -> None:
    topic, event_ids = long_partition
    topics = {"events": topic, "predictions": kafka.unique("predictions"), "dlq": kafka.unique("dlq")}
    kafka.create_topics([topics["predictions"], topics["dlq"]], partitions=4)
    env = scorer_env(kafka_bootstrap, model_store, topics, kafka.unique("scorer"))
    env.update(
        {
            f"CHURN_SCORER_{engine.upper()}_FETCH_WAIT_MS": "2",
            "CHURN_STALL_AFTER_S": str(STALL_AFTER_S),
            # Watermark queries at assignments only: the raise ahead of a stall, which times
            # them, needs three rounds and would beat the stall to it (the next test).
            "CHURN_LAG_QUERY_INTERVAL_S": "120",
        }
    )
    scorer = ScorerProcess(env, tmp_path / "scorer.log", engine=engine)
    try:
        scorer.wait_ready(timeout=90)
        ready_at = time.monotonic()
        # Partitions 1-3 are scored at once; partition 0 does not move: a stall within the window
        # (plus the 2 s observation tick and a slow machine's slack).
        stalled_at = _wait_for(lambda: scorer.metric("churn_partition_stalled", partition="0") == 1, 60)
        detected_after = stalled_at - ready_at
        assert detected_after <= STALL_AFTER_S + 15, detected_after
        assert scorer.consumed() >= 3 * OTHERS
        status, body = scorer.health("ready")
        assert status == 503
        assert f"{topic}[0]" in body["failing"]["stall"]  # type: ignore[index]
        # Recovered: every record of the long partition scored, the stall cleared, ready again.
        _wait_for(lambda: scorer.consumed() >= len(event_ids), 180)
        _wait_for(lambda: scorer.metric("churn_partition_stalled", partition="0") == 0, 30)
        _wait_for(lambda: scorer.health("ready")[0] == 200, 30)
        seeks = scorer.metric("churn_stall_recoveries_total", partition="0", action="seek")
        escalations = scorer.metric(
            "churn_stall_recoveries_total",
            partition="0",
            action="recreate" if engine == "native" else "fetch_wait",
        )
        assert seeks >= 1
        assert escalations >= 1
        log = scorer.log_path.read_text(errors="replace")
        assert log.count(f"partition {topic}[0] stalled") == 1  # one WARNING per episode
        assert f"partition {topic}[0] moves again" in log
        assert scorer.running()
    finally:
        scorer.stop(timeout=30)
    predicted = Counter(
        orjson.loads(record.value or b"{}")["event_id"]
        for record in kafka.consume(topics["predictions"], len(event_ids), timeout=120, idle=3.0)
    )
    missing = set(event_ids) - set(predicted)
    duplicates = sum(predicted.values()) - len(predicted)
    print(
        f"{engine}: stall detected {detected_after:.1f} s after ready; recoveries seek={seeks:.0f} "
        f"escalations={escalations:.0f}; {len(predicted)} of {len(event_ids)} events predicted, "
        f"{duplicates} duplicates"
    )
    assert not missing, f"{len(missing)} events never predicted"
    assert kafka.count(topics["dlq"]) == 0


def _wait_for(condition: object, timeout: float, poll_s: float = 0.5) -> float:
    """Poll ``condition()`` until true; the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():  # type: ignore[operator]
                return time.monotonic()
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout:.0f} s")
        time.sleep(poll_s)


@pytest.mark.parametrize("engine", ["native", "faust"])
def test_the_fetch_wait_goes_up_before_a_stall_once_lookups_outgrow_it(
    engine: str,
    kafka: KafkaTools,
    kafka_bootstrap: str,
    model_store: Path,
    long_partition: tuple[str, list[str]],
    tmp_path: Path,
) -> None:
    """Timed watermark queries show the broker needs longer to find the long partition's data
    than the wait leaves: the wait goes up ahead of any stall verdict, and everything is read."""
    topic, event_ids = long_partition
    topics = {"events": topic, "predictions": kafka.unique("predictions"), "dlq": kafka.unique("dlq")}
    kafka.create_topics([topics["predictions"], topics["dlq"]], partitions=4)
    env = scorer_env(kafka_bootstrap, model_store, topics, kafka.unique("scorer"))
    env.update(
        {
            f"CHURN_SCORER_{engine.upper()}_FETCH_WAIT_MS": "2",
            "CHURN_STALL_AFTER_S": "600",  # no stall verdict within this test
            "CHURN_LAG_QUERY_INTERVAL_S": "1",
        }
    )
    scorer = ScorerProcess(env, tmp_path / "scorer.log", engine=engine)
    try:
        scorer.wait_ready(timeout=90)
        assert scorer.metric("churn_fetch_wait_ms") == 2
        _wait_for(lambda: scorer.metric("churn_fetch_wait_ms") > 2, 60)
        _wait_for(lambda: scorer.consumed() >= len(event_ids), 180)
        assert scorer.metric("churn_partition_stalled") == 0
        assert scorer.metric("churn_stall_recoveries_total") == 0
        log = scorer.log_path.read_text(errors="replace")
        assert "to look up a partition" in log
        assert "before it runs out" in log
        assert "stalled: position" not in log
    finally:
        scorer.stop(timeout=30)
