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
from scorer.batch import BatchLimits, BatchResult, ReasonCodes, score_batch
from scorer.fast_check import read_batch

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
        (lambda n: np.full(n, np.nan), "a probability that is NaN or infinite"),
        (lambda n: np.full(n, 1.5), "a probability outside [0, 1]"),
        (lambda n: np.full(n + 1, 0.5), "(2,) probabilities for 1 events"),  # the last try: one record
    ],
)
def test_a_dead_letter_says_what_was_wrong_with_the_models_answer(answer: Any, words: str) -> None:
    result = _score([orjson.dumps(e) for e in _events(2)], Model(answer))
    letters = _letters(result)
    assert [letter.error_type for letter in letters] == ["scoring_failed"] * 2
    expected = f"model edge-1 failed on this record: ModelOutputError: the model returned {words}"
    assert [letter.error_message for letter in letters] == [expected] * 2
    assert all(letter.exception_class == "ModelOutputError" for letter in letters)


class ExplainingModel(Model):
    """A :class:`Model` that gives reason codes: ``reason_lists(n)`` (one empty list each by default)."""

    def __init__(
        self,
        answer: Any = None,
        *,
        explainable: bool = True,
        because: str | None = None,
        reason_lists: Any = None,
    ) -> None:
        super().__init__(answer)
        self.explainable = explainable
        self.no_reasons_because = because
        self.reason_lists = reason_lists

    def explain_columns(
        self, columns: Mapping[str, Sequence[Any]], n: int, *, top: int = 3, down: int = 0
    ) -> Any:
        probability = self.predict_columns(columns, n)
        lists = [[] for _ in range(n)] if self.reason_lists is None else self.reason_lists(n)
        return batch_explained(probability, lists)


def batch_explained(probability: Any, reasons: list[list[Any]]) -> Any:
    from models.predictor import Explained

    return Explained(probability=probability, reasons=reasons)


def test_a_model_giving_too_few_lists_of_reasons_is_a_scoring_failure() -> None:
    model = ExplainingModel(reason_lists=lambda n: [[] for _ in range(n - 1)])
    result = score_batch(
        _records([orjson.dumps(e) for e in _events(2)]), model, BatchLimits(), NOW.timestamp, ReasonCodes()
    )
    assert not result.predictions
    expected = "model edge-1 failed on this record: ModelOutputError: the model returned 0 lists of reasons"
    expected += " for 1 events"
    assert [letter.error_message for letter in _letters(result)] == [expected] * 2


@pytest.mark.parametrize(
    ("model", "why"),
    [
        (Model(), "Model gives no reason codes"),  # no explain_columns at all
        (ExplainingModel(explainable=False), "this model serves no reason codes"),  # says no, not why
        (ExplainingModel(explainable=False, because="trees average"), "trees average"),
    ],
)
def test_reasons_asked_of_a_model_that_has_none_say_why_on_every_prediction(model: Any, why: str) -> None:
    result = score_batch(
        _records([orjson.dumps(e) for e in _events(2)]), model, BatchLimits(), NOW.timestamp, ReasonCodes()
    )
    assert result.reasons_unavailable == why
    assert [(p["reasons"], p["reasons_unavailable"]) for p in _predictions(result)] == [(None, why)] * 2


@pytest.mark.parametrize("reasons", [None, ReasonCodes()])
@pytest.mark.parametrize(
    "labels", [np.array([True, False]), np.array([1, 0]), [1, 0], np.array([1, 0], dtype=np.float32)]
)
def test_a_model_answering_labels_or_float32_is_written_as_float_probabilities(
    reasons: ReasonCodes | None, labels: Any
) -> None:
    """A model answering ``predict()`` labels, not probabilities, writes JSON numbers, never ``true``."""
    model = ExplainingModel(lambda n: labels)
    result = score_batch(
        _records([orjson.dumps(e) for e in _events(2)]), model, BatchLimits(), NOW.timestamp, reasons
    )
    written = [p["churn_probability"] for p in _predictions(result)]
    assert written == [1.0, 0.0] and all(type(p) is float for p in written)
    assert result.probabilities.dtype == np.float64


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


def test_times_outside_the_calendar_are_refused_row_by_row(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(batch, "_INTERNAL_ERRORS", batch._Throttle(60.0))
    records = _records([b"a", b"b", b"c"])
    times: list[Any] = [NOW, datetime(1, 1, 1), _Unstampable()]  # naive year 1: no epoch seconds
    refused: list[Any] = []
    with caplog.at_level(logging.ERROR, logger="scorer.batch"):
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
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("internal error on events:2:42, dead-lettered as internal_error: RuntimeError")


def test_an_unforeseen_error_reading_one_events_time_dead_letters_only_that_record(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(batch, "_INTERNAL_ERRORS", batch._Throttle(60.0))

    def odd_time(values: Sequence[bytes]) -> Any:
        read = read_batch(values)
        times: list[Any] = read.event_times
        times[1] = _Unstampable()
        return read

    monkeypatch.setattr(batch, "read_batch", odd_time)
    with caplog.at_level(logging.ERROR, logger="scorer.batch"):
        result = _score([orjson.dumps(e) for e in _events(3)], Model())
    assert len(result.predictions) == 2
    [letter] = _letters(result)
    assert (letter.error_type, letter.exception_class, letter.source_offset) == (
        "internal_error",
        "RuntimeError",
        41,
    )
    assert [r.getMessage().split(",")[0] for r in caplog.records] == ["internal error on events:2:41"]


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
    place = "internal error on events:2:40, dead-lettered as internal_error: LookupError: lost"
    assert first == f"{place} (0 more LookupError in the last minute were not logged)"
    assert second == f"{place} (1 more LookupError in the last minute were not logged)"


def test_each_kind_of_internal_error_gets_its_own_log_line_in_a_minute(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(batch, "_INTERNAL_ERRORS", batch._Throttle(60.0, clock=lambda: 0.0))
    errors = iter([LookupError("lost"), KeyError("gone"), LookupError("lost again")])

    def explode(value: bytes, max_bytes: int) -> Any:
        raise next(errors)

    monkeypatch.setattr(batch, "read_event", explode)
    with caplog.at_level(logging.ERROR, logger="scorer.batch"):
        result = _score([b"{}", b"{}", b"{}"], Model())
    classes = [letter.exception_class for letter in _letters(result)]
    assert classes == ["LookupError", "KeyError", "LookupError"]
    assert [r.getMessage().split(": ")[1] for r in caplog.records] == ["LookupError", "KeyError"]


def test_the_log_throttle_lets_one_through_per_interval_and_counts_the_rest() -> None:
    now = [100.0]
    throttle = batch._Throttle(60.0, clock=lambda: now[0])
    assert throttle.allow("a") == 0
    now[0] = 159.9
    assert throttle.allow("a") is None
    assert throttle.allow("b") == 0  # kinds are throttled apart
    now[0] = 160.0  # exactly one interval later
    assert throttle.allow("a") == 1


# -- shadow predictions ---------------------------------------------------------------------------


def _challenger(answer: Any) -> Model:
    challenger = Model(answer)
    challenger.version, challenger.threshold = "challenger-2", 0.2  # type: ignore[misc]
    return challenger


class _Seeing(Model):
    """A challenger that answers by customer: 0.1, 0.3, 0.9 for the champion's first three."""

    def predict_columns(self, columns: Mapping[str, Sequence[Any]], n: int) -> np.ndarray:
        self.calls.append(n)
        by_customer = {e["customer_id"]: p for e, p in zip(_events(3), (0.1, 0.3, 0.9), strict=True)}
        return np.array([by_customer[c] for c in columns["customer_id"]])


def test_a_shadow_prediction_is_the_challengers_verdict_on_the_champions_events() -> None:
    values = [orjson.dumps(e) for e in _events(3)] + [b"not json"]  # the dead letter gets no shadow
    result = _score(values, Model())  # the champion: 0.25 each, threshold 0.5
    challenger = _Seeing()
    challenger.version, challenger.threshold = "challenger-2", 0.2  # type: ignore[misc]
    records, probabilities = batch.shadow_predictions(result, challenger)

    assert challenger.calls == [3]  # one call for the batch
    assert probabilities.tolist() == [0.1, 0.3, 0.9]
    champion, shadow = _predictions(result), [orjson.loads(r.value or b"") for r in records]
    assert [s["churn_probability"] for s in shadow] == [0.1, 0.3, 0.9]
    assert [s["churn"] for s in shadow] == [False, True, True]  # the challenger's own threshold
    assert {s["model_version"] for s in shadow} == {"challenger-2"}
    for name in ("event_id", "customer_id", "event_time", "scored_at"):
        assert [s[name] for s in shadow] == [c[name] for c in champion], name
    assert all("reasons" not in s for s in shadow)
    assert [r.key for r in records] == [p.key for p in result.predictions]
    assert [r.headers for r in records] == [
        [*p.headers[:1], ("model_version", b"challenger-2"), ("role", b"challenger")]
        for p in result.predictions
    ]


def test_a_batch_without_predictions_asks_the_challenger_nothing() -> None:
    result = _score([b"not json"], Model())
    challenger = _challenger(None)
    records, probabilities = batch.shadow_predictions(result, challenger)
    assert records == [] and probabilities.shape == (0,)
    assert challenger.calls == []


def test_a_challenger_answering_nan_fails_its_shadow_batch_not_the_champions() -> None:
    result = _score([orjson.dumps(e) for e in _events(2)], Model())
    with pytest.raises(batch.ModelOutputError, match="NaN"):
        batch.shadow_predictions(result, _challenger(lambda n: np.full(n, np.nan)))
    assert len(result.predictions) == 2 and not result.dead_letters
