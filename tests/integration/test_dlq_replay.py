"""`churn dlq replay` against a real broker and a real `churn score`: filter, fix, keep the key."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import orjson
import pytest

from producer.events import synthetic_events
from schemas.dead_letters import DeadLetter
from tests.support.kafka_tools import KafkaTools
from tests.support.scorer_process import CHURN, ScorerProcess

pytestmark = pytest.mark.integration


def _replay(kafka_bootstrap: str, topics: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [CHURN, "dlq", "replay", "-b", kafka_bootstrap, "--dlq-topic", topics["dlq"],
         "--events-topic", topics["events"], *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return " ".join(done.stdout.split())  # rich wraps lines at the terminal width


def test_replay_fixes_and_republishes_dead_letters_that_then_score(
    kafka: KafkaTools,
    kafka_bootstrap: str,
    topics: dict[str, str],
    start_scorer: Callable[..., ScorerProcess],
) -> None:
    events = synthetic_events(6, seed=31)
    negative = [dict(e, tenure=-5) for e in events[:3]]  # out_of_range, fixable
    contract = [dict(e, contract="Lifetime") for e in events[3:]]  # unknown_category
    records = [(e["customer_id"].encode(), orjson.dumps(e)) for e in negative + contract]
    records.append((b"junk", b"not json at all"))  # invalid_json
    scorer = start_scorer()
    kafka.produce(topics["events"], records)
    letters = kafka.consume(topics["dlq"], 7, timeout=60, idle=1.0)
    assert len(letters) == 7

    # Only the out_of_range ones, at most 2, with tenure fixed by a field override.
    out = _replay(
        kafka_bootstrap, topics, "--error-type", "out_of_range", "--limit", "2", "--set", "tenure=12"
    )
    assert "replayed 2" in out, out
    # The unknown categories, fixed with a JSON merge patch.
    out = _replay(kafka_bootstrap, topics, "-t", "unknown_category", "--fix", '{"contract": "One year"}')
    assert "replayed 3" in out, out
    # Not JSON cannot take a fix: counted, not replayed.
    out = _replay(kafka_bootstrap, topics, "-t", "invalid_json", "--set", "tenure=1")
    assert "replayed 0" in out and "not fixable 1" in out, out

    replayed = [
        r for r in kafka.consume(topics["events"], 12, timeout=30, idle=1.0) if "replayed_from" in r.headers
    ]
    assert len(replayed) == 5
    for record in replayed:
        source = record.headers["replayed_from"].decode()
        assert source.startswith(topics["dlq"] + ":")
        payload = orjson.loads(record.value or b"{}")
        assert record.key == payload["customer_id"].encode()  # the original key
    fixed_ids = {orjson.loads(r.value or b"{}")["event_id"] for r in replayed}

    predictions = kafka.consume(topics["predictions"], 5, timeout=60, idle=2.0)
    scored = {orjson.loads(p.value or b"{}")["event_id"] for p in predictions}
    assert scored == fixed_ids
    assert {e["event_id"] for e in contract} <= scored
    assert len(scored & {e["event_id"] for e in negative}) == 2
    # Nothing replayed failed again: the DLQ still holds just the 7 originals.
    again = kafka.consume(topics["dlq"], 7, timeout=10, idle=1.0)
    assert [DeadLetter.from_headers(list(r.headers.items())).error_type for r in again].count(
        "out_of_range"
    ) == 3
    assert len(again) == 7
    assert scorer.stop() == 0, scorer.tail()


def _dlq(kafka: KafkaTools, topics: dict[str, str], expected: int) -> list[tuple[str, DeadLetter]]:
    """``(dlq:partition:offset, dead letter)`` once ``expected`` arrived and nothing more came for 2 s."""
    letters = kafka.consume(topics["dlq"], expected, timeout=90, idle=2.0)
    return [
        (f"{r.topic}:{r.partition}:{r.offset}", DeadLetter.from_headers(list(r.headers.items())))
        for r in letters
    ]


def test_replay_cannot_loop_remembers_its_progress_and_stops_at_max_replays(
    kafka: KafkaTools,
    kafka_bootstrap: str,
    topics: dict[str, str],
    start_scorer: Callable[..., ScorerProcess],
) -> None:
    event = dict(synthetic_events(1, seed=41)[0], contract="Lifetime")  # unknown_category until fixed
    scorer = start_scorer()
    scorer.wait_ready(timeout=120)
    kafka.produce(topics["events"], [(event["customer_id"].encode(), orjson.dumps(event))])
    [(where, original)] = _dlq(kafka, topics, 1)
    assert original.replay_count is None

    # A dry run lists the record and changes nothing: no record, no progress.
    out = _replay(kafka_bootstrap, topics, "--dry-run")
    assert "would replay 1" in out and "progress not moved" in out, out
    assert len(_dlq(kafka, topics, 1)) == 1

    # Nothing fixed: the first run replays it, and it fails again, marked as a replay.
    out = _replay(kafka_bootstrap, topics)
    assert "replayed 1" in out and "progress committed" in out, out
    letters = dict(_dlq(kafka, topics, 2))
    assert len(letters) == 2
    [again] = [letter for letter in letters.values() if letter.replay_count is not None]
    assert (again.replay_count, again.replayed_from) == (1, where)
    assert again.error_type == "unknown_category"

    # The second run replays nothing: the copy failed again after a replay. The DLQ does not grow.
    out = _replay(kafka_bootstrap, topics)
    assert "read 1 " in out and "replayed 0" in out and "skipped 1 failed_again" in out, out
    assert len(_dlq(kafka, topics, 2)) == 2
    # The third run has nothing new to read.
    out = _replay(kafka_bootstrap, topics)
    assert "read 0 " in out and "replayed 0" in out, out

    # --again sends the latest copy back (the original is superseded by it) until the limit (3).
    for expected_dlq in (3, 4):
        out = _replay(kafka_bootstrap, topics, "--again")
        assert "replayed 1" in out and "superseded" in out, out
        assert len(_dlq(kafka, topics, expected_dlq)) == expected_dlq
    out = _replay(kafka_bootstrap, topics, "--again")
    assert "replayed 0" in out and "max_replays" in out, out
    counts = sorted(letter.replay_count or 0 for _, letter in _dlq(kafka, topics, 4))
    assert counts == [0, 1, 2, 3]

    # Fixed and forced, it is scored, and the DLQ stops growing.
    out = _replay(kafka_bootstrap, topics, "--again", "--force", "--fix", '{"contract": "One year"}')
    assert "replayed 1" in out, out
    [prediction] = kafka.consume(topics["predictions"], 1, timeout=60, idle=2.0)
    assert orjson.loads(prediction.value or b"{}")["event_id"] == event["event_id"]
    assert len(_dlq(kafka, topics, 4)) == 4
    assert scorer.stop() == 0, scorer.tail()
