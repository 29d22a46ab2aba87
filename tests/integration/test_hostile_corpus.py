"""The hostile corpus between good events on a real broker: one outcome per record, no worker exit.

Every kind of record in :func:`tests.support.bad_records.hostile_corpus` (deep nesting,
sizes at the producer's limit, odd bytes, huge keys, odd but valid forms...) is produced
between 2,000 good events. The worker (per engine) must never exit or restart, predict
every good event exactly once, write exactly one dead letter (of the catalogue's type)
for each refused record and exactly one prediction for each odd but valid one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import orjson
import pytest

from producer.events import synthetic_events
from schemas.dead_letters import DeadLetter
from tests.support.bad_records import dead_letter_of, hostile_corpus
from tests.support.kafka_tools import KafkaTools
from tests.support.scorer_process import ScorerProcess

pytestmark = pytest.mark.integration


def test_every_hostile_record_gets_one_outcome_and_the_worker_never_exits(
    kafka: KafkaTools, topics: dict[str, str], start_scorer: Callable[..., ScorerProcess]
) -> None:
    corpus = hostile_corpus()
    refused = [bad for bad in corpus if bad.error_type is not None]
    valid = [bad for bad in corpus if bad.error_type is None]
    assert len({bad.name for bad in corpus}) >= 25
    good = synthetic_events(2000, seed=81)
    records: list[tuple[bytes | None, bytes | None]] = [
        (e["customer_id"].encode(), orjson.dumps(e)) for e in good
    ]
    step = len(good) // len(corpus)
    for i, bad in enumerate(corpus):
        records.insert(i * (step + 1) + 1, (bad.key, bad.value))

    scorer = start_scorer()
    scorer.wait_ready(timeout=120)
    pid = scorer.pid
    kafka.produce(topics["events"], records)
    scorer.wait_consumed(len(records), timeout=180)

    letters = kafka.consume(topics["dlq"], len(refused), timeout=60, idle=3.0)
    assert len(letters) == len(refused)
    outcomes: Counter[str] = Counter()
    for letter in letters:
        bad = dead_letter_of(refused, letter.key, letter.value, letter.headers)
        meta = DeadLetter.from_headers(list(letter.headers.items()))
        assert meta.error_type == bad.error_type, (bad.name, meta.error_message)
        if bad.name == "near_producer_limit":  # cut to the dead-letter limit, original size kept
            assert meta.truncated and meta.original_size == len(bad.value or b"")
        if bad.name == "huge_key_not_json":
            assert meta.key_truncated and meta.original_key_size == len(bad.key or b"")
        outcomes[bad.name] += 1
    assert outcomes == Counter({bad.name: 1 for bad in refused})

    predictions = kafka.consume(topics["predictions"], len(good) + len(valid), timeout=90, idle=3.0)
    ids = Counter(orjson.loads(p.value or b"{}")["event_id"] for p in predictions)
    good_ids = {e["event_id"] for e in good}
    assert all(ids[event_id] == 1 for event_id in good_ids), "a good event missing or predicted twice"
    assert sum(n for event_id, n in ids.items() if event_id not in good_ids) == len(valid)
    assert len(predictions) == len(good) + len(valid)

    # Never exited, never restarted: the same process, started once, logging no traceback.
    assert scorer.running() and scorer.pid == pid, scorer.tail()
    assert scorer.metric("churn_events_consumed_total") == len(records)
    log = scorer.log_path.read_text(errors="replace")
    assert log.count(f"scoring {topics['events']} ->") == 1, scorer.tail(80)
    assert "Traceback" not in log, scorer.tail(80)
    assert scorer.stop() == 0, scorer.tail()
