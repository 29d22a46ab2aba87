"""The scorer's fast path accepts only what orjson + CustomerEvent accept, with the same values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_io.records import RawRecord
from producer.events import synthetic_events
from schemas.events import CustomerEvent
from schemas.features import FEATURES, SCHEMA_VERSION, TELCO_ALIASES
from scorer.batch import BatchLimits, _decode, _model_validate, _RejectedError, score_batch
from scorer.fast_check import COLUMNS, FastBatch, columns_of, read_batch

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


#: Every field the model reads.
FIELDS = (*COLUMNS, "event_time", "schema_version")


def _model_values(event: CustomerEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in FIELDS}


def _fast_values(batch: FastBatch, row: int) -> dict[str, Any]:
    event = batch.events[row]
    values = {name: getattr(event, name) for name in FIELDS}
    values["event_time"] = batch.event_times[row]
    if values["total_charges"] is msgspec.UNSET:
        values["total_charges"] = None
    if values["schema_version"] is msgspec.UNSET:
        values["schema_version"] = SCHEMA_VERSION
    return values


def _slow_path(value: bytes) -> CustomerEvent | None:
    """What the scorer's slow path (orjson, repeated keys, the model) makes of ``value``."""
    try:
        return _model_validate(
            _decode(RawRecord(value, b"k", "t", 0, 0, None), BatchLimits().max_event_bytes)
        )
    except _RejectedError:
        return None


def _assert_agrees(value: bytes) -> None:
    """If the fast path passes ``value``, the slow path accepts it with the same values."""
    batch = read_batch([value])
    if batch.slow == [0]:
        return  # the model decides: nothing to compare
    assert batch.slow == []
    event = _slow_path(value)
    assert event is not None, f"fast path accepted what the slow path refuses: {value!r}"
    assert _fast_values(batch, 0) == _model_values(event), value


def _event(**changes: Any) -> dict[str, Any]:
    return synthetic_events(1, seed=5)[0] | changes


def test_the_producers_events_all_take_the_fast_path() -> None:
    events = synthetic_events(500, seed=11)
    batch = read_batch([orjson.dumps(e) for e in events])
    assert batch.slow == []
    for row, record in enumerate(events):
        assert _fast_values(batch, row) == _model_values(CustomerEvent.model_validate(record))


@pytest.mark.parametrize("field", sorted(FIELDS))
@pytest.mark.parametrize("value", TRICKY, ids=repr)
def test_a_tricky_value_in_any_field_is_read_alike_or_left_to_the_model(field: str, value: Any) -> None:
    _assert_agrees(orjson.dumps(_event(**{field: value})))


@pytest.mark.parametrize("field", [*FEATURES, "customer_id", "event_id", "event_time"])
def test_a_missing_field_goes_to_the_model(field: str) -> None:
    record = _event()
    del record[field]
    batch = read_batch([orjson.dumps(record)])
    if field == "total_charges":  # optional: missing means unknown, imputed by the encoder
        assert batch.slow == [] and columns_of(batch.events)["total_charges"] == [None]
    else:
        assert batch.slow == [0]


def test_telco_column_names_go_to_the_model_and_score_the_same() -> None:
    record = _event()
    telco = {TELCO_ALIASES.get(k, k): v for k, v in record.items()}
    assert read_batch([orjson.dumps(telco)]).slow == [0]
    assert CustomerEvent.model_validate(telco) == CustomerEvent.model_validate(record)


def test_an_optional_field_under_its_telco_name_goes_to_the_model() -> None:
    """The model reads ``TotalCharges`` when ``total_charges`` is absent; so must the scorer."""
    record = _event()
    del record["total_charges"]
    value = orjson.dumps(record | {"TotalCharges": 1e300})
    assert read_batch([value]).slow == [0]
    assert _slow_path(value) is None  # out of range


def test_unknown_fields_go_to_the_model_which_ignores_them() -> None:
    value = orjson.dumps(_event(note={"nested": [1, 2]}))
    assert read_batch([value]).slow == [0]
    assert _slow_path(value) is not None


@pytest.mark.parametrize(
    "repeat",
    [b',"tenure":5', b',"tenure":36', b',"event_id":"a:b"', b',"total_charges":null', b',"schema_version":1'],
)
@pytest.mark.parametrize("optional_fields", [True, False])
def test_a_repeated_key_goes_to_the_model_which_refuses_it(repeat: bytes, optional_fields: bool) -> None:
    record = _event(customer_id="id:with:colons", schema_version=1)
    if not optional_fields:  # the colon count must not take a repeat for an optional field
        del record["total_charges"], record["schema_version"]
        repeat = repeat * 2
    value = orjson.dumps(record)[:-1] + repeat + b"}"
    others = [orjson.dumps(e) for e in synthetic_events(3, seed=1)]
    batch = read_batch([*others, value])
    assert batch.slow == [3]
    assert _slow_path(value) is None


def test_colons_and_whitespace_in_the_text_stay_on_the_fast_path() -> None:
    record = _event(customer_id="a:b", event_id="c::d", schema_version=1)
    spaced = orjson.dumps(record, option=orjson.OPT_INDENT_2).replace(b'":', b'" :')
    for value in (orjson.dumps(record), spaced):
        assert read_batch([value]).slow == []
        _assert_agrees(value)


@pytest.mark.parametrize(
    ("plain", "escaped"),
    [(b'"tenure"', b'"ten\\u0075re"'), (b'"event_id":"', b'"event_id":"\\u003a'), (b'"No"', b'"N\\u006f"')],
)
def test_escape_sequences_go_to_the_model(plain: bytes, escaped: bytes) -> None:
    value = orjson.dumps(_event()).replace(plain, escaped, 1)
    assert b"\\" in value
    assert read_batch([value]).slow == [0]
    assert _slow_path(value) is not None


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b" ",
        b"null",
        b"[]",
        b"{}",
        b"{",
        b"\xff",
        b'{"customer_id":"\xed\xa0\x80"}',
        b"[" + orjson.dumps(_event()) + b"]",
    ],
    ids=repr,
)
def test_what_is_not_an_event_object_goes_to_the_model(value: bytes) -> None:
    assert read_batch([orjson.dumps(_event()), value]).slow == [1]


def test_only_the_odd_rows_of_a_batch_are_left_to_the_model() -> None:
    events = synthetic_events(6, seed=2)
    events[1]["partner"] = True  # lenient: the model reads it as "Yes"
    events[4]["tenure"] = "12"  # lenient: a number as text
    batch = read_batch([orjson.dumps(e) for e in events])
    assert batch.slow == [1, 4]
    assert batch.event_times[0] is not None and batch.event_times[0].tzinfo is not None
    assert batch.event_times[1] is None


@pytest.mark.parametrize(
    "bad", ["2026-13-26T10:00:00Z", "2026-11-26 10:00:00Z", "2026-11-26T10:00:00Z\n2026-11-26T10:00:00Z"]
)
def test_one_odd_event_time_sends_only_its_row_to_the_model(bad: str) -> None:
    events = synthetic_events(3, seed=2)
    events[1]["event_time"] = bad
    batch = read_batch([orjson.dumps(e) for e in events])
    assert batch.slow == [1]
    assert None not in (batch.event_times[0], batch.event_times[2])


def test_a_naive_event_time_is_utc_as_in_the_model() -> None:
    value = orjson.dumps(_event(event_time="2026-11-26T10:00:00"))
    batch = read_batch([value])
    assert batch.event_times == [datetime(2026, 11, 26, 10, tzinfo=UTC)]
    _assert_agrees(value)


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
    _assert_agrees(orjson.dumps(synthetic_events(1, seed=9)[0] | changes))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(position=st.integers(min_value=0, max_value=10_000), byte=st.integers(min_value=0, max_value=255))
def test_a_changed_byte_never_lets_the_fast_path_disagree_with_the_slow_path(
    position: int, byte: int
) -> None:
    value = bytearray(orjson.dumps(synthetic_events(1, seed=9)[0]))
    value[position % len(value)] = byte
    _assert_agrees(bytes(value))


def test_fast_and_model_paths_write_the_same_prediction(predictor: Any) -> None:
    """The same customer, once canonical (fast path) and once with telco names (model path)."""
    record = _event()
    telco = {TELCO_ALIASES.get(k, k): v for k, v in record.items()}
    values = [orjson.dumps(record), orjson.dumps(telco)]
    raws = [RawRecord(v, b"k", "customer-events", 0, i, None) for i, v in enumerate(values)]
    result = score_batch(raws, predictor, BatchLimits())
    assert not result.dead_letters
    first, second = (orjson.loads(p.value or b"") for p in result.predictions)
    assert first == second


def test_the_colon_count_rests_on_facts_about_the_struct() -> None:
    """The repeated-key check assumes colon-free vocabularies and the two optional fields last."""
    from schemas.features import CATEGORIES
    from scorer.fast_check import CanonicalEvent

    assert not any(":" in level for levels in CATEGORIES.values() for level in levels)
    assert CanonicalEvent.__struct_fields__[-2:] == ("total_charges", "schema_version")
    assert set(CanonicalEvent.__struct_fields__) == set(FIELDS)
