"""The scorer's column-wise fast path accepts only what CustomerEvent accepts, with the same values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from producer.events import synthetic_events
from schemas.events import CustomerEvent
from schemas.features import FEATURES, TELCO_ALIASES
from scorer.batch import BatchLimits, RawRecord, score_batch
from scorer.fast_check import FIELDS, check_batch

#: Values that are valid somewhere, lenient somewhere, or wrong: each is tried in every field.
TRICKY: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    2,
    -1,
    54,
    54.0,
    54.5,
    1200,
    1201,
    10_000,
    10_000.5,
    1e7,
    1e300,
    "",
    " ",
    "0",
    "1",
    "54",
    "29.85",
    "Yes",
    " Yes",
    "Yes ",
    "yes",
    "No",
    "No internet service",
    "No phone service",
    "Male",
    "Fiber optic",
    "Two year",
    "Electronic check",
    "x" * 128,
    "x" * 129,
    " id",
    "id\t",
    "\u00a0id",
    "id\x1f",
    "2026-11-26T10:00:00Z",
    "2026-11-26T10:00:00.5+05:30",
    "2026-11-26T10:00:00.1234567Z",
    "2026-11-26T10:00:00",
    "2026-11-26",
    "2026-11-26 10:00:00Z",
    "2026-13-26T10:00:00Z",
    "2026-11-26T24:00:00Z",
    "2026-11-26T10:00:60Z",
    "2026-11-26T10:00:00+24:00",
    "20261126T100000Z",
    1_700_000_000,
    [],
    ["Yes"],
    {"a": 1},
]


def _model_values(event: CustomerEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in FIELDS}


def _fast_values(check: Any, row: int) -> dict[str, Any]:
    values = {name: check.columns[name][row] for name in FIELDS}
    values["event_time"] = check.event_times[row]
    for name in ("monthly_charges", "total_charges"):
        if values[name] is not None:
            values[name] = float(values[name])
    return values


def _assert_agrees(record: dict[str, Any]) -> None:
    """If the fast path passes ``record``, the model accepts it with the same values."""
    check = check_batch([record])
    if check.slow == [0]:
        return  # the model decides: nothing to compare
    assert check.slow == []
    try:
        event = CustomerEvent.model_validate(record)
    except ValidationError as exc:  # pragma: no cover - the failure this test exists for
        pytest.fail(f"fast path accepted what the model refuses: {record}\n{exc}")
    assert _fast_values(check, 0) == _model_values(event), record


def test_the_producers_events_all_take_the_fast_path() -> None:
    events = synthetic_events(500, seed=11)
    check = check_batch(events)
    assert check.slow == []
    for row, record in enumerate(events):
        assert _fast_values(check, row) == _model_values(CustomerEvent.model_validate(record))


@pytest.mark.parametrize("field", sorted(FIELDS))
@pytest.mark.parametrize("value", TRICKY, ids=repr)
def test_a_tricky_value_in_any_field_is_read_alike_or_left_to_the_model(field: str, value: Any) -> None:
    record = synthetic_events(1, seed=5)[0] | {field: value}
    _assert_agrees(record)


@pytest.mark.parametrize("field", [*FEATURES, "customer_id", "event_id", "event_time"])
def test_a_missing_field_goes_to_the_model(field: str) -> None:
    record = synthetic_events(1, seed=5)[0]
    del record[field]
    check = check_batch([record])
    if field == "total_charges":  # optional: missing means unknown, imputed by the encoder
        assert check.slow == [] and check.columns["total_charges"] == [None]
    else:
        assert check.slow == [0]


def test_telco_column_names_go_to_the_model_and_score_the_same() -> None:
    record = synthetic_events(1, seed=5)[0]
    telco = {TELCO_ALIASES.get(k, k): v for k, v in record.items()}
    assert check_batch([telco]).slow == [0]
    assert CustomerEvent.model_validate(telco) == CustomerEvent.model_validate(record)


def test_only_the_odd_rows_of_a_batch_are_left_to_the_model() -> None:
    events = synthetic_events(6, seed=2)
    events[1]["partner"] = True  # lenient: the model reads it as "Yes"
    events[4]["tenure"] = "12"  # lenient: a number as text
    check = check_batch(events)
    assert check.slow == [1, 4]
    assert check.event_times[0] is not None and check.event_times[0].tzinfo is not None


def test_a_naive_event_time_is_utc_as_in_the_model() -> None:
    record = synthetic_events(1, seed=5)[0] | {"event_time": "2026-11-26T10:00:00"}
    check = check_batch([record])
    assert check.event_times == [datetime(2026, 11, 26, 10, tzinfo=UTC)]
    _assert_agrees(record)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=st.dictionaries(
        st.sampled_from(sorted(FIELDS)),
        st.one_of(
            st.sampled_from(TRICKY),
            st.integers(min_value=-5, max_value=20_000),
            st.floats(allow_nan=False, allow_infinity=False),
            st.text(max_size=12),
        ),
        max_size=4,
    )
)
def test_random_changes_never_let_the_fast_path_disagree_with_the_model(changes: dict[str, Any]) -> None:
    record = synthetic_events(1, seed=9)[0] | changes
    _assert_agrees(orjson.loads(orjson.dumps(record)))  # as the scorer sees it: decoded JSON


def test_fast_and_model_paths_write_the_same_prediction(predictor: Any) -> None:
    """The same customer, once canonical (fast path) and once with telco names (model path)."""
    record = synthetic_events(1, seed=5)[0]
    telco = {TELCO_ALIASES.get(k, k): v for k, v in record.items()}
    values = [orjson.dumps(record), orjson.dumps(telco)]
    raws = [RawRecord(v, b"k", "customer-events", 0, i, None) for i, v in enumerate(values)]
    result = score_batch(raws, predictor, BatchLimits())
    assert not result.dead_letters
    first, second = (orjson.loads(p.value) for p in result.predictions)
    assert first == second
