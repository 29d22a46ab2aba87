"""Both engines read one input stream (valid + bad records) and must write the same outputs."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from producer.events import synthetic_events
from schemas.dead_letters import DeadLetter
from tests.support.bad_records import bad_records
from tests.support.kafka_tools import KafkaTools
from tests.support.scorer_process import ScorerProcess, scorer_env

pytestmark = pytest.mark.integration


def test_faust_and_native_write_the_same_predictions_and_dead_letters(
    kafka: KafkaTools, kafka_bootstrap: str, model_store: Path, tmp_path: Path
) -> None:
    events_topic = kafka.unique("events")
    kafka.create_topics([events_topic], partitions=4)
    events = synthetic_events(3000, seed=21)
    records: list[tuple[bytes | None, bytes | None]] = [
        (e["customer_id"].encode(), orjson.dumps(e)) for e in events
    ]
    bad = bad_records()
    for i, b in enumerate(bad):
        records.insert(i * 97, (b.key, b.value))
    kafka.produce(events_topic, records)

    outputs = {}
    for engine in ("faust", "native"):
        topics = {"events": events_topic, "predictions": kafka.unique("pred"), "dlq": kafka.unique("dlq")}
        kafka.create_topics([topics["predictions"], topics["dlq"]], partitions=4)
        env = scorer_env(kafka_bootstrap, model_store, topics, kafka.unique(f"agree-{engine}"))
        scorer = ScorerProcess(env, tmp_path / f"{engine}.log", engine=engine)
        try:
            predictions = kafka.consume(topics["predictions"], len(events), timeout=90, idle=2.0)
            letters = kafka.consume(topics["dlq"], len(bad), timeout=30, idle=2.0)
            assert scorer.stop() == 0, scorer.tail()
        finally:
            if scorer.running():
                scorer.kill()
        pairs = {}
        for p in predictions:
            body = orjson.loads(p.value or b"{}")
            pairs[body["event_id"]] = (body["churn_probability"], p.key)
        dead = {}
        for r in letters:
            meta = DeadLetter.from_headers(list(r.headers.items()))
            dead[(r.key, r.value)] = (
                meta.error_type,
                meta.error_message,
                meta.source_partition,
                meta.source_offset,
            )
        outputs[engine] = (pairs, dead)

    faust_pairs, faust_dead = outputs["faust"]
    native_pairs, native_dead = outputs["native"]
    assert len(faust_pairs) == len(events)
    assert set(faust_pairs) == set(native_pairs)
    # Same event, same model, same probability. The engines cut batches differently and BLAS
    # may sum a row in another order for another batch shape: equal to the last few ulps.
    for event_id, (probability, key) in faust_pairs.items():
        assert native_pairs[event_id][1] == key
        assert native_pairs[event_id][0] == pytest.approx(probability, rel=1e-12, abs=1e-15), event_id
    assert len(faust_dead) == len(bad)
    assert faust_dead == native_dead
