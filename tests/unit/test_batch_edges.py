"""The batch core at its exact limits and on its rare paths (the survivors of `make mutation`).

Each test states a promise an operator or a downstream reader relies on: an event exactly at a
limit is treated as the limit says, a single failing record is isolated like a batch of many,
times are UTC, and the record's coordinates reach the dead letter and the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest

from kafka_io.records import RawRecord
from producer.events import synthetic_events
from schemas.dead_letters import DeadLetter
from scorer import batch
from scorer.batch import BatchLimits, BatchResult, score_batch

NOW = datetime(2030, 1, 1, tzinfo=UTC)


class Model:
    """Answers ``answer(n)`` (0.25 each by default); raises ``fails`` for its first ``fail_calls`` calls."""

    version = "edge-1"
    threshold = 0.5

    def __init__(self, answer: Any = None, fails: Exception | None = None, fail_calls: int = 0) -> None:
        self.answer = answer
        self.fails = fails
        self.fail_calls = fail_calls
        self.calls: list[int] = []

    def predict_columns(self, columns: Mapping[str, Sequence[Any]], n: int) -> np.ndarray:
        self.calls.append(n)
        if self.fails is not None and (self.fail_calls == 0 or len(self.calls) <= self.fail_calls):
            raise self.fails
        return np.full(n, 0.25) if self.answer is None else self.answer(n)


def _events(n: int, **changes: Any) -> list[dict[str, Any]]:
    return [e | changes for e in synthetic_events(n, seed=5)]


def _records(values: Sequence[bytes], **fields: Any) -> list[RawRecord]:
    return [RawRecord(v, b"k%d" % i, "events", 2, 40 + i, **fields) for i, v in enumerate(values)]


def _score(
    values: Sequence[bytes], model: Any, limits: BatchLimits | None = None, **fields: Any
) -> BatchResult:
    return score_batch(_records(values, **fields), model, limits or BatchLimits(), clock=NOW.timestamp)


def _letters(result: BatchResult) -> list[DeadLetter]:
    return [DeadLetter.from_headers(d.headers) for d in result.dead_letters]


def _predictions(result: BatchResult) -> list[dict[str, Any]]:
    return [orjson.loads(p.value or b"") for p in result.predictions]


# -- exact limits ---------------------------------------------------------------------------------


def test_beside_an_event_from_the_future_one_exactly_at_the_skew_limit_is_still_scored() -> None:
    skew = 300.0
    at = (NOW + timedelta(seconds=skew)).isoformat()
    ahead = (NOW + timedelta(seconds=skew + 60)).isoformat()
    values = [orjson.dumps(e) for e in _events(1, event_time=at) + _events(1, event_time=ahead)]
    result = _score(values, Model(), BatchLimits(max_future_skew_s=skew))
    assert [p["event_time"] for p in _predictions(result)] == [at]
    [letter] = _letters(result)
    assert (letter.error_type, letter.error_field, letter.source_offset) == (
        "event_from_future",
        "event_time",
        41,
    )


@pytest.mark.parametrize("probability", [0.0, 1.0])
def test_probabilities_exactly_zero_and_one_are_valid_model_output(probability: float) -> None:
    result = _score([orjson.dumps(e) for e in _events(3)], Model(lambda n: np.full(n, probability)))
    assert not result.dead_letters
    assert [p["churn_probability"] for p in _predictions(result)] == [probability] * 3


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda n: np.full(n, np.nan), "NaN or infinite"),
        (lambda n: np.full(n, 1.5), "outside [0, 1]"),
        (lambda n: np.full(n + 1, 0.5), "probabilities for"),
    ],
)
def test_a_dead_letter_says_what_was_wrong_with_the_models_answer(answer: Any, words: str) -> None:
    result = _score([orjson.dumps(e) for e in _events(2)], Model(answer))
    letters = _letters(result)
    assert [letter.error_type for letter in letters] == ["scoring_failed"] * 2
    assert all(words in letter.error_message for letter in letters), [x.error_message for x in letters]
    assert all(letter.exception_class == "ModelOutputError" for letter in letters)


# -- model failures on small batches --------------------------------------------------------------


def test_a_single_record_the_model_fails_on_is_dead_lettered_with_its_exception() -> None:
    model = Model(fails=ValueError("bad tenure"))
    result = _score([orjson.dumps(_events(1)[0])], model)
    [letter] = _letters(result)
    assert (letter.error_type, letter.exception_class) == ("scoring_failed", "ValueError")
    assert "bad tenure" in letter.error_message
    assert model.calls == [1, 1]  # tried once more, then given up: nothing to bisect
    assert not result.predictions
    assert result.churned == 0


def test_a_failing_batch_is_retried_once_then_bisected() -> None:
    model = Model(fails=RuntimeError("passing fault"), fail_calls=2)
    result = _score([orjson.dumps(e) for e in _events(6)], model)
    assert model.calls == [6, 6, 3, 3]  # the batch, its one retry, then its halves
    assert len(result.predictions) == 6
    assert not result.dead_letters


# -- times ----------------------------------------------------------------------------------------


def test_prediction_and_dead_letter_times_are_the_scorer_clock_in_utc() -> None:
    good, bad = orjson.dumps(_events(1)[0]), b"not json"
    result = _score([good, bad], Model())
    [prediction] = _predictions(result)
    assert datetime.fromisoformat(prediction["scored_at"]) == NOW
    assert prediction["scored_at"].endswith("+00:00")
    [letter] = _letters(result)
    assert letter.failed_at == NOW
    assert letter.failed_at.utcoffset() == timedelta(0)


def test_an_event_read_by_the_slow_path_keeps_its_own_event_time() -> None:
    when = "2029-06-01T12:00:00+00:00"
    event = _events(1, event_time=when)[0] | {"extra_field": [1, 2]}  # an unknown field: slow path
    result = _score([orjson.dumps(event)], Model(), timestamp=NOW.timestamp() - 5)
    [prediction] = _predictions(result)
    assert datetime.fromisoformat(prediction["event_time"]) == datetime.fromisoformat(when)


@pytest.mark.parametrize(
    ("stamp", "expected"), [(0.0, NOW), (-1.0, NOW), (1.0, datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))]
)
def test_an_event_without_time_takes_its_record_timestamp_unless_there_is_none(
    stamp: float, expected: datetime
) -> None:
    event = {k: v for k, v in _events(1)[0].items() if k != "event_time"}
    result = _score([orjson.dumps(event)], Model(), timestamp=stamp)
    [prediction] = _predictions(result)
    assert datetime.fromisoformat(prediction["event_time"]) == expected


class _Unstampable:
    def timestamp(self) -> float:
        raise RuntimeError("clock broke")

    def isoformat(self) -> str:
        return "?"


def test_times_outside_the_calendar_are_refused_row_by_row() -> None:
    records = _records([b"a", b"b", b"c"])
    times: list[Any] = [NOW, datetime(1, 1, 1), _Unstampable()]  # naive year 1: no epoch seconds
    refused: list[Any] = []
    stamps = batch._timestamps([0, 1, 2], times, records, refused)
    assert stamps == {0: NOW.timestamp()}
    out_of_range, internal = refused
    assert (out_of_range.row, out_of_range.error_type) == (1, "invalid_timestamp")
    assert "0001-01-01T00:00:00 is out of range" in out_of_range.message
    assert (internal.row, internal.error_type, internal.exception_class) == (
        2,
        "internal_error",
        "RuntimeError",
    )
    assert "clock broke" in internal.message


# -- result fields the scorer's metrics read ------------------------------------------------------


def test_the_result_carries_the_model_version_and_sane_durations() -> None:
    started = time.perf_counter()
    result = _score([orjson.dumps(e) for e in _events(20)], Model())
    elapsed = time.perf_counter() - started
    assert result.model_version == "edge-1"
    assert 0.0 <= result.inference_seconds <= result.total_seconds <= elapsed


# -- replay headers -------------------------------------------------------------------------------


def test_replay_headers_are_copied_past_odd_headers_and_cut_to_size() -> None:
    long_origin = b"dlq:0:" + b"9" * 600
    headers: list[tuple[str, bytes | None]] = [
        ("trace", None),
        ("replay_count", b"not a number"),
        ("replay_count", b"2"),
        ("replayed_from", long_origin),
    ]
    [letter] = _letters(_score([b"{"], Model(), headers=headers))
    assert letter.replay_count == 2
    assert letter.replayed_from == long_origin.decode()[:512]


def test_a_replayed_from_header_that_is_not_utf8_is_kept_readable() -> None:
    [letter] = _letters(_score([b"{"], Model(), headers=[("replayed_from", b"dlq:\xff:7")]))
    assert letter.error_type == "invalid_json"
    assert letter.replayed_from == "dlq:\ufffd:7"


# -- the log an operator reads --------------------------------------------------------------------


def test_an_internal_error_is_logged_with_the_records_place_and_exception(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    monkeypatch.setattr(batch, "_INTERNAL_ERRORS", batch._Throttle(60.0, clock=lambda: now[0]))

    def explode(value: bytes, max_bytes: int) -> Any:
        raise LookupError("lost")

    monkeypatch.setattr(batch, "read_event", explode)
    with caplog.at_level(logging.ERROR, logger="scorer.batch"):
        _score([b"{}", b"{}"], Model())
        now[0] = 61.0
        _score([b"{}"], Model())
    first, second = (r.getMessage() for r in caplog.records)
    assert "internal error on events:2:40" in first
    assert "LookupError: lost" in first
    assert "(1 more LookupError in the last minute were not logged)" in second


def test_the_log_throttle_lets_one_through_per_interval_and_counts_the_rest() -> None:
    now = [100.0]
    throttle = batch._Throttle(60.0, clock=lambda: now[0])
    assert throttle.allow("a") == 0
    now[0] = 159.9
    assert throttle.allow("a") is None
    assert throttle.allow("b") == 0  # kinds are throttled apart
    now[0] = 160.0  # exactly one interval later
    assert throttle.allow("a") == 1
