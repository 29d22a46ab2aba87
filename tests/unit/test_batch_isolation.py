"""No record can take its batch down: unexpected errors, model failures, limits met exactly.

Fast unit tests of :func:`scorer.batch.score_batch` with stand-in models (no broker): one
outcome per record whatever fails, the retry and bisection of a failing model, resource
errors that must propagate, dead letters cut to fit, and every limit at its exact boundary.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest

from kafka_io.records import RawRecord
from producer.events import synthetic_events
from schemas.dead_letters import DeadLetter
from schemas.nesting import MAX_NESTING_DEPTH, nesting_depth, too_deep
from scorer import batch
from scorer.batch import MAX_DEAD_LETTER_KEY_BYTES, BatchLimits, BatchResult, score_batch

LIMITS = BatchLimits()

Rule = Callable[[Mapping[str, Sequence[Any]], int], np.ndarray | None]


class FakeModel:
    """Answers 0.25 per record unless ``rule`` returns something else (or raises)."""

    version = "fake-1"
    threshold = 0.5

    def __init__(self, rule: Rule | None = None) -> None:
        self.rule = rule
        self.calls: list[int] = []

    def predict_columns(self, columns: Mapping[str, Sequence[Any]], n: int) -> np.ndarray:
        self.calls.append(n)
        answer = self.rule(columns, n) if self.rule is not None else None
        return np.full(n, 0.25) if answer is None else answer


def _events(n: int, **changes: Any) -> list[dict[str, Any]]:
    return [e | changes for e in synthetic_events(n, seed=7)]


def _records(
    values: Sequence[bytes | None], headers: list[tuple[str, bytes]] | None = None
) -> list[RawRecord]:
    return [RawRecord(v, b"k%d" % i, "events", 0, i, None, headers) for i, v in enumerate(values)]


def _letters(result: BatchResult) -> dict[int, DeadLetter]:
    """Dead letters by source offset (= row in these tests)."""
    letters = [DeadLetter.from_headers(d.headers) for d in result.dead_letters]
    return {letter.source_offset: letter for letter in letters}


def _predicted_ids(result: BatchResult) -> list[str]:
    return [orjson.loads(p.value or b"")["event_id"] for p in result.predictions]


def _one_outcome_each(result: BatchResult, n: int) -> None:
    assert result.consumed == n
    assert len(_letters(result)) == len(result.dead_letters)  # one dead letter per record at most


# -- unexpected exceptions -------------------------------------------------------------------


@pytest.fixture
def fresh_throttle(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A log throttle of its own, on a clock the test moves."""
    now = [1000.0]
    monkeypatch.setattr(batch, "_INTERNAL_ERRORS", batch._Throttle(60.0, clock=lambda: now[0]))
    return now


def test_an_unexpected_exception_dead_letters_only_its_record_and_is_logged_once_a_minute(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, fresh_throttle: list[float]
) -> None:
    events = _events(6)
    real = batch.read_event

    def explode_on_marker(value: bytes, max_bytes: int) -> Any:
        if b'"marker":true' in value:
            raise KeyError("boom")
        return real(value, max_bytes)

    monkeypatch.setattr(batch, "read_event", explode_on_marker)
    values = [
        orjson.dumps(e | {"marker": i in (1, 4)}) for i, e in enumerate(events)
    ]  # extra field: slow path
    with caplog.at_level(logging.ERROR, logger="scorer.batch"):
        result = score_batch(_records(values), FakeModel(), LIMITS)
        fresh_throttle[0] += 59.0
        score_batch(_records(values[:2]), FakeModel(), LIMITS)  # within the minute: not logged
        fresh_throttle[0] += 2.0
        score_batch(_records(values[:2]), FakeModel(), LIMITS)  # a minute later: logged, with the count

    _one_outcome_each(result, 6)
    letters = _letters(result)
    assert set(letters) == {1, 4}
    assert {letter.error_type for letter in letters.values()} == {"internal_error"}
    assert letters[1].exception_class == "KeyError"
    assert "boom" in letters[1].error_message
    assert result.dead_letter_types == {"internal_error": 2}
    assert _predicted_ids(result) == [events[i]["event_id"] for i in (0, 2, 3, 5)]
    lines = [r for r in caplog.records if "internal_error" in r.getMessage()]
    assert len(lines) == 2, [r.getMessage() for r in lines]
    assert "(2 more KeyError in the last minute" in lines[1].getMessage()
    assert lines[0].exc_info is not None  # the traceback, to find the bug


def test_an_exception_message_that_is_not_utf8_still_makes_a_dead_letter(
    monkeypatch: pytest.MonkeyPatch, fresh_throttle: list[float]
) -> None:
    def quotes_a_lone_surrogate(value: bytes, max_bytes: int) -> Any:
        raise ValueError("bad input \ud800 here")

    monkeypatch.setattr(batch, "read_event", quotes_a_lone_surrogate)
    result = score_batch(_records([b'{"odd": 1}']), FakeModel(), LIMITS)
    assert dict(result.dead_letters[0].headers)["error_message"] == b"ValueError: bad input ? here"


def test_a_resource_error_while_decoding_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    def out_of_memory(value: bytes, max_bytes: int) -> Any:
        raise MemoryError

    monkeypatch.setattr(batch, "read_event", out_of_memory)
    with pytest.raises(MemoryError):
        score_batch(_records([b'{"odd": 1}']), FakeModel(), LIMITS)


def test_a_fast_path_failing_on_the_whole_batch_falls_back_row_by_row(
    monkeypatch: pytest.MonkeyPatch, fresh_throttle: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    real = batch.read_batch
    seen: list[int] = []
    errors = iter([RuntimeError("fast path bug"), RuntimeError("again"), KeyError("other")])

    def fails_on_batches(values: Sequence[bytes]) -> Any:
        seen.append(len(values))
        if len(values) > 1:
            raise next(errors)
        return real(values)

    monkeypatch.setattr(batch, "read_batch", fails_on_batches)
    events = _events(5)
    with caplog.at_level(logging.ERROR, logger="scorer.batch"):
        result = score_batch(_records([orjson.dumps(e) for e in events]), FakeModel(), LIMITS)
        assert not result.dead_letters  # not one dead letter: each row is read on its own
        assert _predicted_ids(result) == [e["event_id"] for e in events]
        assert seen == [5, 1, 1, 1, 1, 1]
        for _ in range(2):  # within the minute: the same class is held back, another is logged
            assert (
                len(score_batch(_records([orjson.dumps(e) for e in events]), FakeModel(), LIMITS).predictions)
                == 5
            )
    fresh_throttle[0] += 61.0
    with caplog.at_level(logging.ERROR, logger="scorer.batch"):
        errors = iter([RuntimeError("later")])
        score_batch(_records([orjson.dumps(e) for e in events]), FakeModel(), LIMITS)
    lines = [(r.getMessage(), r.exc_info[1] if r.exc_info else None) for r in caplog.records]
    row_by_row = "reading it row by row"
    assert [line for line, _ in lines] == [
        f"the fast path failed on a batch of 5 (RuntimeError: fast path bug); {row_by_row} "
        "(0 more in the last minute were not logged)",
        f"the fast path failed on a batch of 5 (KeyError: 'other'); {row_by_row} "
        "(0 more in the last minute were not logged)",
        f"the fast path failed on a batch of 5 (RuntimeError: later); {row_by_row} "
        "(1 more in the last minute were not logged)",
    ]
    assert [str(exc) for _, exc in lines] == ["fast path bug", "'other'", "later"]  # with the traceback


def test_a_row_the_fast_path_fails_on_goes_to_the_slow_path(
    monkeypatch: pytest.MonkeyPatch, fresh_throttle: list[float]
) -> None:
    real = batch.read_batch
    events = _events(3)
    poison = orjson.dumps(events[1])

    def fails_on_one(values: Sequence[bytes]) -> Any:
        if poison in values:
            raise ValueError("msgspec bug")
        return real(values)

    monkeypatch.setattr(batch, "read_batch", fails_on_one)
    result = score_batch(_records([orjson.dumps(e) for e in events]), FakeModel(), LIMITS)
    assert not result.dead_letters
    assert _predicted_ids(result) == [e["event_id"] for e in events]  # the slow path vouched for it


def test_a_prediction_that_cannot_be_written_is_an_internal_error_the_others_are_written(
    monkeypatch: pytest.MonkeyPatch, fresh_throttle: list[float]
) -> None:
    events = _events(4)
    bad_id = events[2]["event_id"]
    real = batch.prediction_payloads

    def refuses(ids: Sequence[str], *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        if bad_id in ids:
            raise TypeError("cannot write this one")
        return real(ids, *args, **kwargs)

    monkeypatch.setattr(batch, "prediction_payloads", refuses)
    result = score_batch(_records([orjson.dumps(e) for e in events]), FakeModel(), LIMITS)
    _one_outcome_each(result, 4)
    assert _predicted_ids(result) == [events[i]["event_id"] for i in (0, 1, 3)]
    assert _letters(result)[2].error_type == "internal_error"
    assert len(result.probabilities) == len(result.event_times) == 3


# -- nesting depth ------------------------------------------------------------------------------


def test_nesting_depth_counts_brackets_outside_strings_only() -> None:
    assert nesting_depth(b"42") == 0
    assert nesting_depth(b'{"a": 1}') == 1
    assert nesting_depth(b'{"a": [1, {"b": [2]}]}') == 4
    assert nesting_depth(b'{"a": "[[[[{{{{"}') == 1
    assert nesting_depth(b'{"a": "\\"[[[["}') == 1  # an escaped quote does not end the string
    # A closer without its opener lowers the count; such text is not JSON, and orjson refuses
    # it at that closer, before any parser could recurse.
    assert nesting_depth(b"]]]][[") == 0


def test_unmatched_closers_before_deep_nesting_still_get_one_dead_letter() -> None:
    for value in (b"]" * 10 + b"[" * 2000, b"}" * 5000 + b"{" * 5100, b"[" * 70 + b"]" * 5000):
        result = score_batch(_records([value]), FakeModel(), LIMITS)
        _one_outcome_each(result, 1)
        assert result.dead_letter_types.keys() <= {"invalid_json", "too_deep"}


def test_the_depth_limit_is_exact() -> None:
    at_limit = b"[" * MAX_NESTING_DEPTH + b"]" * MAX_NESTING_DEPTH
    over = b"[" * (MAX_NESTING_DEPTH + 1) + b"]" * (MAX_NESTING_DEPTH + 1)
    assert not too_deep(at_limit)
    assert too_deep(over)
    assert not too_deep(b'{"a": "' + b"[" * 1000 + b'"}')


def test_a_record_at_the_depth_limit_is_scored_one_level_deeper_is_too_deep() -> None:
    event = _events(1)[0]
    inner = MAX_NESTING_DEPTH - 1  # the event object itself is one level
    ok = orjson.dumps(event)[:-1] + b',"x":' + b"[" * inner + b"]" * inner + b"}"
    deep = orjson.dumps(event)[:-1] + b',"x":' + b"[" * (inner + 1) + b"]" * (inner + 1) + b"}"
    result = score_batch(_records([ok, deep]), FakeModel(), LIMITS)
    assert len(result.predictions) == 1
    assert _letters(result)[1].error_type == "too_deep"


# -- dead letters that fit ------------------------------------------------------------------


def test_a_dead_letter_value_is_cut_only_above_the_limit_with_size_and_sha256() -> None:
    limits = BatchLimits(max_event_bytes=1024, max_dead_letter_bytes=2048)
    at_limit, over = b"x" * 2048, b"y" * 2049
    result = score_batch(_records([at_limit, over]), FakeModel(), limits)
    letters = _letters(result)
    assert result.dead_letters[0].value == at_limit
    assert not letters[0].truncated
    assert ("truncated", b"true") not in result.dead_letters[0].headers
    assert result.dead_letters[1].value == over[:2048]
    assert (letters[1].truncated, letters[1].original_size) == (True, 2049)
    assert letters[1].original_sha256 == hashlib.sha256(over).hexdigest()
    assert (letters[1].source_topic, letters[1].source_offset) == ("events", 1)  # where the original is


def test_a_dead_letter_key_is_cut_only_above_its_limit() -> None:
    keys = [b"a" * MAX_DEAD_LETTER_KEY_BYTES, b"b" * (MAX_DEAD_LETTER_KEY_BYTES + 1)]
    records = [RawRecord(b"not json", key, "events", 0, i) for i, key in enumerate(keys)]
    result = score_batch(records, FakeModel(), LIMITS)
    letters = _letters(result)
    assert result.dead_letters[0].key == keys[0]
    assert not letters[0].key_truncated
    assert result.dead_letters[1].key == keys[1][:MAX_DEAD_LETTER_KEY_BYTES]
    assert (letters[1].key_truncated, letters[1].original_key_size) == (True, len(keys[1]))
    assert letters[1].original_key_sha256 == hashlib.sha256(keys[1]).hexdigest()


def test_replay_headers_are_copied_onto_the_new_dead_letter_only() -> None:
    headers = [("replay_count", b"2"), ("replayed_from", b"dlq:1:17"), ("other", b"x")]
    event = _events(1)[0]
    result = score_batch(_records([b"still not json", orjson.dumps(event)], headers), FakeModel(), LIMITS)
    letter = _letters(result)[0]
    assert (letter.replay_count, letter.replayed_from) == (2, "dlq:1:17")
    assert dict(result.predictions[0].headers).keys() == {"event_id", "model_version"}


def test_a_replay_count_that_is_not_a_number_is_not_copied() -> None:
    result = score_batch(_records([b"nope"], [("replay_count", b"lots")]), FakeModel(), LIMITS)
    assert _letters(result)[0].replay_count is None
    assert ("replay_count", b"lots") not in result.dead_letters[0].headers


# -- limits at their exact boundary -----------------------------------------------------------


def _padded(event: dict[str, Any], size: int) -> bytes:
    """``event`` as JSON of exactly ``size`` bytes (an extra field takes the padding)."""
    bare = orjson.dumps(event | {"pad": ""})
    value = orjson.dumps(event | {"pad": "p" * (size - len(bare))})
    assert len(value) == size
    return value


def test_an_event_of_exactly_max_event_bytes_is_scored_one_byte_more_is_oversize() -> None:
    limits = BatchLimits(max_event_bytes=2000)
    event = _events(1)[0]
    result = score_batch(_records([_padded(event, 2000), _padded(event, 2001)]), FakeModel(), limits)
    assert len(result.predictions) == 1
    assert _letters(result)[1].error_type == "oversize"


def test_an_event_exactly_at_the_future_skew_is_scored_once_just_past_it_is_refused_once() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    skew = 300.0
    at = _events(1, event_time=(now + timedelta(seconds=skew)).isoformat())[0]
    past = _events(1, event_time=(now + timedelta(seconds=skew, microseconds=1)).isoformat())[0]
    limits = BatchLimits(max_future_skew_s=skew)
    for value, scored in ((orjson.dumps(at), True), (orjson.dumps(past), False)):
        result = score_batch(_records([value]), FakeModel(), limits, clock=now.timestamp)
        _one_outcome_each(result, 1)
        assert len(result.predictions) == (1 if scored else 0)
        assert result.dead_letter_types == ({} if scored else {"event_from_future": 1})


def test_a_probability_equal_to_the_threshold_is_churn_just_below_is_not() -> None:
    below = np.nextafter(0.5, 0.0)
    model = FakeModel(lambda columns, n: np.array([0.5, below]))
    result = score_batch(_records([orjson.dumps(e) for e in _events(2)]), model, LIMITS)
    churn = [orjson.loads(p.value or b"")["churn"] for p in result.predictions]
    assert churn == [True, False]
    assert result.churned == 1


# -- the model fails ------------------------------------------------------------------------------


def _values(n: int, bad: Sequence[int] = (), **changes: Any) -> list[bytes]:
    """``n`` events; those at ``bad`` have tenure 999 (the stand-in models' marker)."""
    return [
        orjson.dumps(e | ({"tenure": 999} if i in bad else {})) for i, e in enumerate(_events(n, **changes))
    ]


def _marked(columns: Mapping[str, Sequence[Any]]) -> list[bool]:
    return [t == 999 for t in columns["tenure"]]


def _raises_on_marked(columns: Mapping[str, Sequence[Any]], n: int) -> np.ndarray | None:
    if any(_marked(columns)):
        raise ValueError("cannot score tenure 999")
    return None


def test_a_model_that_fails_once_is_retried_and_nothing_is_dead_lettered() -> None:
    failures = [RuntimeError("a passing fault")]

    def once(columns: Mapping[str, Sequence[Any]], n: int) -> np.ndarray | None:
        if failures:
            raise failures.pop()
        return None

    model = FakeModel(once)
    result = score_batch(_records(_values(8)), model, LIMITS)
    assert len(result.predictions) == 8
    assert not result.dead_letters
    assert model.calls == [8, 8]


def test_only_the_records_the_model_fails_on_are_dead_lettered_the_rest_are_scored() -> None:
    bad = (3, 17, 18, 60)
    model = FakeModel(_raises_on_marked)
    values = _values(64, bad)
    result = score_batch(_records(values), model, LIMITS)
    _one_outcome_each(result, 64)
    letters = _letters(result)
    assert set(letters) == set(bad)
    assert {letter.error_type for letter in letters.values()} == {"scoring_failed"}
    assert letters[3].exception_class == "ValueError"
    assert "cannot score tenure 999" in letters[3].error_message
    assert len(result.predictions) == 60
    assert result.probabilities.tolist() == [0.25] * 60
    assert len(result.event_times) == 60
    assert result.churned == 0
    # Two whole-batch tries, then halves: far fewer calls than one per record.
    assert model.calls[:2] == [64, 64]
    assert len(model.calls) < 40


def test_records_the_model_answers_nan_for_are_dead_lettered() -> None:
    def nan_on_marked(columns: Mapping[str, Sequence[Any]], n: int) -> np.ndarray:
        return np.where(_marked(columns), np.nan, 0.25)

    result = score_batch(_records(_values(10, bad=(0, 9))), FakeModel(nan_on_marked), LIMITS)
    letters = _letters(result)
    assert set(letters) == {0, 9}
    assert "NaN" in letters[0].error_message
    assert len(result.predictions) == 8


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda n: np.full(n + 1, 0.25), "probabilities for"),
        (lambda n: np.full((n, 2), 0.25), "probabilities for"),
        (lambda n: np.full(n, 1.5), "outside [0, 1]"),
        (lambda n: np.full(n, -0.1), "outside [0, 1]"),
        (lambda n: np.full(n, np.inf), "NaN or infinite"),
    ],
)
def test_a_model_answering_the_wrong_shape_or_values_is_a_scoring_failure(
    answer: Callable[[int], np.ndarray], words: str
) -> None:
    result = score_batch(_records(_values(3)), FakeModel(lambda c, n: answer(n)), LIMITS)
    assert not result.predictions
    assert result.dead_letter_types == {"scoring_failed": 3}
    assert all(words in letter.error_message for letter in _letters(result).values())


def test_a_model_failing_on_batches_but_not_on_single_records_scores_everything() -> None:
    def only_singles(columns: Mapping[str, Sequence[Any]], n: int) -> np.ndarray:
        return np.full(n, 0.25) if n == 1 else np.full(1, 0.25)  # wrong shape unless n == 1

    result = score_batch(_records(_values(5)), FakeModel(only_singles), LIMITS)
    assert len(result.predictions) == 5
    assert not result.dead_letters


def test_a_recursion_error_from_the_model_is_isolated_like_any_failure() -> None:
    def recurses(columns: Mapping[str, Sequence[Any]], n: int) -> np.ndarray | None:
        if any(_marked(columns)):
            raise RecursionError("maximum recursion depth exceeded")
        return None

    result = score_batch(_records(_values(4, bad=(2,))), FakeModel(recurses), LIMITS)
    assert set(_letters(result)) == {2}
    assert len(result.predictions) == 3


def test_a_memory_error_from_the_model_propagates_and_nothing_is_dead_lettered() -> None:
    def out_of_memory(columns: Mapping[str, Sequence[Any]], n: int) -> np.ndarray:
        raise MemoryError

    with pytest.raises(MemoryError):
        score_batch(_records(_values(4)), FakeModel(out_of_memory), LIMITS)


def test_a_memory_error_during_bisection_propagates_too() -> None:
    def fails_then_out_of_memory(columns: Mapping[str, Sequence[Any]], n: int) -> np.ndarray:
        if n == 4:
            raise ValueError("bad batch")
        raise MemoryError

    with pytest.raises(MemoryError):
        score_batch(_records(_values(4)), FakeModel(fails_then_out_of_memory), LIMITS)


class _ExplainingFake(FakeModel):
    """A :class:`FakeModel` that explains (one reason per record, its tenure) or says it cannot."""

    def __init__(self, rule: Rule | None = None, *, explainable: bool = True) -> None:
        super().__init__(rule)
        self.explainable = explainable
        self.no_reasons_because = None if explainable else "not this one"

    def explain_columns(
        self, columns: Mapping[str, Sequence[Any]], n: int, *, top: int = 3, down: int = 0
    ) -> Any:
        from models.explain import Reason
        from models.predictor import Explained

        reasons = [[Reason(feature="tenure", value=t, contribution=0.5)] for t in columns["tenure"]]
        return Explained(probability=self.predict_columns(columns, n), reasons=reasons)


@pytest.mark.parametrize("explainable", [True, False])
def test_a_model_failure_and_an_unwritable_prediction_in_one_batch_leave_the_others_as_they_were(
    monkeypatch: pytest.MonkeyPatch, fresh_throttle: list[float], explainable: bool
) -> None:
    events = _events(5)
    poison, unwritable = events[1]["customer_id"], events[3]["event_id"]

    def fails_on_poison(columns: Mapping[str, Sequence[Any]], n: int) -> np.ndarray | None:
        if poison in columns["customer_id"]:
            raise RuntimeError("poisoned")
        return None

    def score() -> BatchResult:
        model = _ExplainingFake(fails_on_poison, explainable=explainable)
        records = _records([orjson.dumps(e) for e in events])
        return score_batch(records, model, LIMITS, clock=lambda: 1.9e9, reasons=batch.ReasonCodes())

    clean = {p["event_id"]: p for p in map(orjson.loads, (r.value or b"" for r in score().predictions))}
    from schemas.predictions import prediction_payloads as real

    def refuses(ids: Sequence[str], *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        if unwritable in ids:
            raise TypeError("cannot write this one")
        return real(ids, *args, **kwargs)

    monkeypatch.setattr(batch, "prediction_payloads", refuses)
    result = score()
    _one_outcome_each(result, 5)
    letters = _letters(result)
    assert {row: letters[row].error_type for row in letters} == {1: "scoring_failed", 3: "internal_error"}
    written = [orjson.loads(r.value or b"") for r in result.predictions]
    assert written == [
        clean[events[i]["event_id"]] for i in (0, 2, 4)
    ]  # reasons, times: all as without the faults
    assert ("reasons_unavailable" in written[0]) is not explainable
    assert (letters[3].exception_class, letters[3].error_message) == (
        "TypeError",
        "TypeError: cannot write this one",
    )
    assert len(result.probabilities) == len(result.event_times) == len(result.scored_event_times) == 3
    assert result.scored_columns["event_id"] == [events[i]["event_id"] for i in (0, 2, 4)]  # for the shadow
