"""The poison catalogue against a real `churn score`: typed dead letters, counted, quiet and fast."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import orjson
import pytest

from producer.events import synthetic_events
from schemas.dead_letters import DeadLetter
from tests.support.bad_records import bad_records, dead_letter_of
from tests.support.kafka_tools import KafkaTools
from tests.support.scorer_process import ScorerProcess

pytestmark = pytest.mark.integration

#: The kinds of bad input the scorer must tell apart, each with the catalogue entry (by name) that covers it.
ISSUE_KINDS = {
    "not JSON": "plain_text",
    "truncated JSON": "truncated_json",
    "not UTF-8": "latin1",
    "empty value": "zero_bytes",
    "control characters in an id": "escape_in_customer_id",
    "JSON array instead of object": "json_array",
    "missing required fields": "missing_tenure",
    "wrong types": "charges_as_text",
    "NaN": "nan_charges",
    "Infinity": "infinity_charges",
    "negative tenure": "negative_tenure",
    "unknown category": "unknown_contract",
    "huge numbers": "huge_tenure",
    "1 MB payload": "one_megabyte",
    "duplicated keys": "duplicate_tenure",
    "event from the future": "future_event_time",
}


def _seconds_to_consume(scorer: ScorerProcess, total: int, timeout: float = 120.0) -> float:
    """Seconds from the first consumed event to the last (scraped every 20 ms)."""
    scorer.wait_metrics()
    deadline = time.monotonic() + timeout
    scorer.wait_consumed(1, timeout, poll_s=0.02)
    started = time.monotonic()
    scorer.wait_consumed(total, deadline - started, poll_s=0.02)
    return time.monotonic() - started


def test_the_catalogue_covers_every_kind_the_issue_names() -> None:
    catalogue = {b.name: b for b in bad_records()}
    for kind, name in ISSUE_KINDS.items():
        assert name in catalogue, kind
    assert len(catalogue) >= 30
    assert len({b.error_type for b in catalogue.values()}) >= 19
    # Each kind lands on a type that says what is wrong, never the catch-all.
    assert all(catalogue[name].error_type != "invalid_value" for name in ISSUE_KINDS.values())


def test_poison_is_dead_lettered_by_type_counted_quietly_and_costs_no_throughput(
    kafka: KafkaTools,
    topics: dict[str, str],
    start_scorer: Callable[..., ScorerProcess],
) -> None:
    events = synthetic_events(5000, seed=21)
    clean = [(e["customer_id"].encode(), orjson.dumps(e)) for e in events]
    bad = bad_records()
    poisoned: list[tuple[bytes | None, bytes | None]] = list(clean)
    for i, b in enumerate(bad):  # spread over the whole stream
        poisoned.insert(i * (len(clean) // len(bad)), (b.key, b.value))

    # Baseline: the same 5,000 valid events, on their own topic, scored by the same kind of worker.
    baseline_topic = kafka.unique("events-clean")
    kafka.create_topics([baseline_topic], partitions=4)
    kafka.produce(baseline_topic, clean)
    kafka.produce(topics["events"], poisoned)
    baseline = start_scorer("--events-topic", baseline_topic, "--app-id", kafka.unique("baseline"))
    clean_s = _seconds_to_consume(baseline, len(clean))
    assert baseline.stop() == 0, baseline.tail()

    scorer = start_scorer()
    poisoned_s = _seconds_to_consume(scorer, len(poisoned))
    print(f"5,000 events: {clean_s:.2f} s clean, {poisoned_s:.2f} s with {len(bad)} poison records")
    # Comparable: bad records are rejected per record, not by failing and retrying batches.
    assert poisoned_s <= 2.0 * clean_s + 1.0, (clean_s, poisoned_s)

    letters = kafka.consume(topics["dlq"], len(bad), timeout=30, idle=2.0)
    assert len(letters) == len(bad)
    seen: set[str] = set()
    for letter in letters:
        meta = DeadLetter.from_headers(list(letter.headers.items()))
        expected = dead_letter_of(bad, letter.key, letter.value, letter.headers)
        assert meta.error_type == expected.error_type, (expected.name, meta.error_message)
        seen.add(expected.name)
    assert seen == {b.name for b in bad}

    expected_counts = Counter(b.error_type for b in bad)
    for error_type, count in expected_counts.items():
        assert scorer.metric("churn_dead_letters_total", error_type=error_type) == count, error_type
    assert scorer.metric("churn_dead_letters_total") == len(bad)
    predictions = kafka.count(topics["predictions"])
    assert predictions >= len(events)

    assert scorer.stop() == 0, scorer.tail()
    log = scorer.log_path.read_text(errors="replace")
    assert "Traceback" not in log, scorer.tail(80)
    assert not [line for line in log.splitlines() if " ERROR " in line or "[ERROR]" in line], scorer.tail(80)
