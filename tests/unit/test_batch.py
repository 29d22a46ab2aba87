"""The pure batch core: every input yields one prediction or one dead letter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from kafka_io.records import RawRecord
from producer.events import synthetic_events
from schemas import dead_letters
from schemas.dead_letters import DeadLetter
from schemas.predictions import ChurnPrediction
from scorer.batch import MAX_DEAD_LETTER_KEY_BYTES, BatchLimits, score_batch
from tests.support.bad_records import bad_records, odd_but_valid

LIMITS = BatchLimits(max_event_bytes=64 * 1024, max_future_skew_s=300.0)


def _raw(values: Sequence[bytes | None], keys: Sequence[bytes | None] | None = None) -> list[RawRecord]:
    keys = keys if keys is not None else [b"k%d" % i for i in range(len(values))]
    pairs = enumerate(zip(values, keys, strict=True))
    return [RawRecord(v, k, "customer-events", i % 3, 100 + i, None) for i, (v, k) in pairs]


def test_valid_events_get_the_predictors_probabilities(predictor: Any) -> None:
    events = synthetic_events(300, seed=3)
    result = score_batch(_raw([orjson.dumps(e) for e in events]), predictor, LIMITS)

    assert not result.dead_letters
    assert len(result.predictions) == 300
    frame = pd.DataFrame(events)
    expected = predictor.predict_frame(frame)
    got = [ChurnPrediction.model_validate_json(p.value) for p in result.predictions]
    assert [g.event_id for g in got] == [e["event_id"] for e in events]
    np.testing.assert_allclose([g.churn_probability for g in got], expected, rtol=0, atol=1e-12)
    assert [g.churn for g in got] == [bool(p >= predictor.threshold) for p in expected]
    first = result.predictions[0]
    assert first.key == events[0]["customer_id"].encode()
    assert dict(first.headers) == {
        "event_id": events[0]["event_id"].encode(),
        "model_version": predictor.version.encode(),
    }
    assert got[0].model_version == predictor.version
    assert len(result.event_times) == 300
    assert result.churned == sum(g.churn for g in got)


def test_telco_column_names_are_accepted(predictor: Any) -> None:
    from schemas.features import TELCO_ALIASES

    event = synthetic_events(1, seed=4)[0]
    telco = {TELCO_ALIASES.get(k, k): v for k, v in event.items()}
    result = score_batch(_raw([orjson.dumps(telco)]), predictor, LIMITS)
    assert len(result.predictions) == 1, result.dead_letters


@pytest.mark.parametrize("bad", bad_records(), ids=lambda b: b.name)
def test_each_bad_record_gets_its_specific_error_type(predictor: Any, bad: Any) -> None:
    good = orjson.dumps(synthetic_events(1, seed=5)[0])
    records = _raw([good, bad.value, good], keys=[b"g1", bad.key, b"g2"])
    result = score_batch(records, predictor, LIMITS)

    assert len(result.predictions) == 2
    assert len(result.dead_letters) == 1
    letter = result.dead_letters[0]
    meta = DeadLetter.from_headers(letter.headers)
    if bad.value is not None and len(bad.value) > LIMITS.max_dead_letter_bytes:
        assert letter.value == bad.value[: LIMITS.max_dead_letter_bytes]  # a prefix, with the original's size
        assert (meta.truncated, meta.original_size) == (True, len(bad.value))
    else:
        assert letter.value == bad.value  # original bytes, unchanged
        assert not meta.truncated
    if bad.key is not None and len(bad.key) > MAX_DEAD_LETTER_KEY_BYTES:
        assert letter.key == bad.key[:MAX_DEAD_LETTER_KEY_BYTES]
        assert (meta.key_truncated, meta.original_key_size) == (True, len(bad.key))
    else:
        assert letter.key == bad.key
    assert meta.error_type == bad.error_type, meta.error_message
    assert meta.source_topic == "customer-events"
    assert (meta.source_partition, meta.source_offset) == (1, 101)
    assert meta.error_message
    assert isinstance(meta.failed_at, datetime)
    assert result.dead_letter_types == {bad.error_type: 1}


def test_catalogue_covers_every_input_error_type() -> None:
    covered = {b.error_type for b in bad_records()}
    assert covered == set(dead_letters.ALL_TYPES) - {dead_letters.SCORING_FAILED, dead_letters.INTERNAL_ERROR}
    assert not set(dead_letters.RETIRED_TYPES) & set(dead_letters.ALL_TYPES)


@pytest.mark.parametrize("odd", odd_but_valid(), ids=lambda b: b.name)
def test_odd_but_valid_records_are_predicted(predictor: Any, odd: Any) -> None:
    good = orjson.dumps(synthetic_events(1, seed=5)[0])
    result = score_batch(_raw([good, odd.value, good], keys=[b"g1", odd.key, b"g2"]), predictor, LIMITS)
    assert len(result.predictions) == 3, [DeadLetter.from_headers(d.headers) for d in result.dead_letters]


def test_error_message_names_the_field_and_reason(predictor: Any) -> None:
    event = synthetic_events(1)[0] | {"tenure": 5000}
    result = score_batch(_raw([orjson.dumps(event)]), predictor, LIMITS)
    meta = DeadLetter.from_headers(result.dead_letters[0].headers)
    assert meta.error_type == "out_of_range"
    assert meta.error_message.startswith("tenure: ")
    assert "1200" in meta.error_message
    assert "5000" in meta.error_message


def test_future_skew_is_configurable_and_uses_the_clock(predictor: Any) -> None:
    event = synthetic_events(1)[0]
    now = datetime.fromisoformat(event["event_time"]).timestamp()
    value = orjson.dumps(event)
    # The scorer clock is 10 s behind the event: fine with 300 s of skew, refused with 5 s.
    ok = score_batch(_raw([value]), predictor, LIMITS, clock=lambda: now - 10)
    assert len(ok.predictions) == 1
    strict = BatchLimits(max_event_bytes=LIMITS.max_event_bytes, max_future_skew_s=5)
    refused = score_batch(_raw([value]), predictor, strict, clock=lambda: now - 10)
    assert refused.dead_letter_types == {"event_from_future": 1}


def test_nested_objects_with_repeated_inner_keys_are_not_duplicates(predictor: Any) -> None:
    event = synthetic_events(1)[0] | {"extra": {"a": 1, "b": {"a": 2}}, "note": 'say "x": y'}
    result = score_batch(_raw([orjson.dumps(event)]), predictor, LIMITS)
    assert len(result.predictions) == 1, result.dead_letters


class _BrokenPredictor:
    version = "broken-1"
    threshold = 0.5

    def predict_columns(self, columns: Mapping[str, Sequence[Any]], n: int) -> np.ndarray:
        raise RuntimeError("model exploded")


def test_a_failing_model_dead_letters_the_valid_records_of_the_batch() -> None:
    values = [orjson.dumps(e) for e in synthetic_events(3)] + [b"not json"]
    result = score_batch(_raw(values), _BrokenPredictor(), LIMITS)
    assert not result.predictions
    assert result.dead_letter_types == {"scoring_failed": 3, "invalid_json": 1}
    meta = DeadLetter.from_headers(result.dead_letters[0].headers)
    assert meta.error_type == "scoring_failed"
    assert "model exploded" in meta.error_message
    assert meta.exception_class == "RuntimeError"


def test_empty_batch() -> None:
    result = score_batch([], _BrokenPredictor(), LIMITS)
    assert result.consumed == 0


def test_an_event_without_id_or_time_gets_its_coordinates_and_the_record_timestamp(predictor: Any) -> None:
    event = synthetic_events(1, seed=6)[0]
    del event["event_id"], event["event_time"]
    stamp = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC).timestamp()
    records = [RawRecord(orjson.dumps(event), None, "customer-events", 2, 41, stamp)]
    result = score_batch(records, predictor, LIMITS)
    assert not result.dead_letters
    (prediction,) = result.predictions
    got = ChurnPrediction.model_validate_json(prediction.value or b"")
    assert got.event_id == "customer-events:2:41"
    assert dict(prediction.headers)["event_id"] == b"customer-events:2:41"
    assert got.event_time == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert result.event_times == [stamp]
    assert prediction.key == event["customer_id"].encode()  # unkeyed in, keyed by customer out
    # read again (a crash before the commit): the same id, so consumers deduplicate it
    again = score_batch(records, predictor, LIMITS)
    assert ChurnPrediction.model_validate_json(again.predictions[0].value or b"").event_id == got.event_id


def test_a_record_without_a_timestamp_takes_the_scorers_clock(predictor: Any) -> None:
    event = synthetic_events(1, seed=6)[0]
    del event["event_time"]
    for stamp in (None, -0.001):  # no timestamp, and librdkafka's "not available"
        records = [RawRecord(orjson.dumps(event), b"k", "customer-events", 0, 1, stamp)]
        result = score_batch(records, predictor, LIMITS, clock=lambda: 1_800_000_000.0)
        assert result.event_times == [1_800_000_000.0]


def test_a_record_timestamp_ahead_of_the_clock_is_not_refused(predictor: Any) -> None:
    """The future rule is for event_time fields; a producer's clock skew must not drop its events."""
    event = synthetic_events(1, seed=6)[0]
    del event["event_time"]
    ahead = 1_800_000_000.0 + 86_400
    records = [RawRecord(orjson.dumps(event), b"k", "customer-events", 0, 1, ahead)]
    result = score_batch(records, predictor, LIMITS, clock=lambda: 1_800_000_000.0)
    assert len(result.predictions) == 1


def test_unkeyed_and_keyed_csv_rows_are_all_scored(predictor: Any) -> None:
    from schemas.features import TELCO_ALIASES

    rows = []
    for event in synthetic_events(30, seed=8):
        row = {TELCO_ALIASES.get(k, k): "" if v is None else str(v) for k, v in event.items()}
        del row["event_id"], row["event_time"]
        rows.append(orjson.dumps(row))
    keys = [None if i % 3 == 0 else b"k%d" % i for i in range(len(rows))]
    result = score_batch(_raw(rows, keys), predictor, LIMITS)
    assert not result.dead_letters
    assert len(result.predictions) == 30
    ids = [ChurnPrediction.model_validate_json(p.value or b"").event_id for p in result.predictions]
    assert ids == [f"customer-events:{i % 3}:{100 + i}" for i in range(30)]


def test_a_byte_order_mark_before_the_json_is_ignored(predictor: Any) -> None:
    value = orjson.dumps(synthetic_events(1, seed=6)[0])
    result = score_batch(_raw([value, b"\xef\xbb\xbf" + value]), predictor, LIMITS)
    assert not result.dead_letters
    first, second = (orjson.loads(p.value or b"") for p in result.predictions)
    assert first["churn_probability"] == pytest.approx(second["churn_probability"], abs=1e-12)


def test_a_dead_letter_names_the_field(predictor: Any) -> None:
    event = synthetic_events(1)[0] | {"customer_id": "a\u202eb"}
    result = score_batch(_raw([orjson.dumps(event)]), predictor, LIMITS)
    meta = DeadLetter.from_headers(result.dead_letters[0].headers)
    assert (meta.error_type, meta.error_field) == ("invalid_characters", "customer_id")
    assert "U+202E" in meta.error_message
