"""The scorer's fast path accepts only what the input contract accepts, with the same values.

Every well-formed shape takes it: snake_case or telco names, numbers as JSON numbers or as the
text a CSV export writes, ids and event_time present or absent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_io.records import RawRecord
from producer.events import synthetic_events
from schemas.contract import Rejection, read_event
from schemas.events import CustomerEvent
from schemas.features import FEATURES, SCHEMA_VERSION, TELCO_ALIASES
from scorer.batch import BatchLimits, score_batch
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
    " 1",
    "1 ",
    "+1",
    "-0",
    "007",
    "1_000",
    "1,000",
    "0x10",
    "1e2",
    "1E2",
    "1e-2",
    "1.",
    ".5",
    "1.0",
    "3.5",
    "12.0000000000000000001",
    "١",  # ARABIC-INDIC DIGIT ONE
    "１",  # FULLWIDTH DIGIT ONE
    "NaN",
    "nan",
    "inf",
    "Infinity",
    "-Infinity",
    "1e999",
    "9" * 40,
    "null",
    "true",
    "false",
    "id\x1b",
    "id\u202e",
    "id\u2066x",
    "id\u200f",
    "id\u061c",
    "id\x85x",
    "id\x7f",
    "\ufeffid",
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


def _typed(values: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Values compared by type and repr: 12 is not 12.0, and -0.0 is not 0.0 (times by ISO text)."""
    return {
        name: (type(value).__name__, value.isoformat() if isinstance(value, datetime) else repr(value))
        for name, value in values.items()
    }


def _model_values(event: CustomerEvent) -> dict[str, Any]:
    return _typed({name: getattr(event, name) for name in FIELDS})


def _fast_values(batch: FastBatch, row: int) -> dict[str, Any]:
    event = batch.events[row]
    values = {name: getattr(event, name) for name in FIELDS}
    values["event_time"] = batch.event_times[row]
    for name in ("total_charges", "event_id"):
        if values[name] is msgspec.UNSET:
            values[name] = None
    if values["schema_version"] is msgspec.UNSET:
        values["schema_version"] = SCHEMA_VERSION
    return _typed(values)


def _slow_path(value: bytes) -> CustomerEvent | None:
    """What the scorer's slow path (the input contract) makes of ``value``."""
    event = read_event(value, BatchLimits().max_event_bytes)
    return None if isinstance(event, Rejection) else event


def _assert_agrees(value: bytes) -> None:
    """If the fast path passes ``value``, the slow path accepts it with the same values."""
    batch = read_batch([value])
    if batch.slow == [0]:
        return  # the model decides: nothing to compare
    assert batch.slow == []
    event = _slow_path(value)
    assert event is not None, f"fast path accepted what the slow path refuses: {value!r}"
    assert _fast_values(batch, 0) == _model_values(event), value


@pytest.fixture(autouse=True)
def _fresh_namings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with only the two built-in namings (learned ones are process state)."""
    from scorer import fast_check

    monkeypatch.setattr(fast_check, "_NAMINGS", fast_check._Namings())


_BASE = synthetic_events(1, seed=5)[0]
_OTHER = synthetic_events(1, seed=9)[0]


def _event(**changes: Any) -> dict[str, Any]:
    return _BASE | changes


def _telco(record: dict[str, Any]) -> dict[str, Any]:
    """The record under the telco column names."""
    return {TELCO_ALIASES.get(name, name): value for name, value in record.items()}


def _csv_row(record: dict[str, Any]) -> dict[str, Any]:
    """The record as csv.DictReader yields a telco export: telco names, every value text, no id/time."""
    row = {name: value for name, value in record.items() if name not in ("event_id", "event_time")}
    as_text = {name: "" if value is None else str(value) for name, value in row.items()}
    return _telco(as_text) | {"Churn": "No"}


def _cased(record: dict[str, Any]) -> dict[str, Any]:
    """Names in another case, as some exports write them (``Tenure``, ``GENDER``)."""
    other = {"tenure": "Tenure", "gender": "GENDER", "MonthlyCharges": "monthlycharges"}
    return {other.get(name, name): value for name, value in record.items()}


SHAPES = {
    "canonical": lambda record: record,
    "telco": _telco,
    "csv_row": _csv_row,
    "no_ids": lambda record: {k: v for k, v in record.items() if k not in ("event_id", "event_time")},
    "cased": lambda record: _cased(_telco(record)),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_well_formed_shape_takes_the_fast_path_with_the_contracts_values(shape: str) -> None:
    originals = synthetic_events(500, seed=11)
    values = [orjson.dumps(SHAPES[shape](e)) for e in originals]
    batch = read_batch(values)
    # A CSV export writes a brand-new customer's TotalCharges as blank text: the contract reads that.
    blank = [row for row, e in enumerate(originals) if e["total_charges"] is None]
    assert blank, "the sample has brand-new customers"
    assert batch.slow == (blank if shape == "csv_row" else [])
    for row, value in enumerate(values):
        event = _slow_path(value)
        assert event is not None
        if row not in batch.slow:
            assert _fast_values(batch, row) == _model_values(event)


def test_a_batch_of_mixed_shapes_reads_each_row_with_its_shape() -> None:
    events = synthetic_events(8, seed=12)
    shapes = ["canonical", "telco", "csv_row", "no_ids", "canonical", "csv_row", "telco", "canonical"]
    values = [orjson.dumps(SHAPES[shape](event)) for shape, event in zip(shapes, events, strict=True)]
    values[5] = orjson.dumps(_csv_row(events[5]) | {"tenure": " 12"})  # padded: the contract's to read
    batch = read_batch(values)
    assert batch.slow == [5]
    for row in (0, 1, 2, 3, 4, 6, 7):
        assert _fast_values(batch, row) == _model_values(_slow_path(values[row]))  # type: ignore[arg-type]


def test_the_shape_of_the_last_batch_is_tried_first_and_both_are_read() -> None:
    canonical = [orjson.dumps(e) for e in synthetic_events(5, seed=13)]
    telco = [orjson.dumps(_csv_row(e)) for e in synthetic_events(5, seed=13)]
    for values in (telco, canonical, telco, telco, canonical):
        batch = read_batch(values)
        assert batch.slow == []
        assert columns_of(batch.events)["customer_id"] == [
            orjson.loads(v).get("customer_id") or orjson.loads(v)["customerID"] for v in values
        ]


def test_the_producers_events_all_take_the_fast_path() -> None:
    events = synthetic_events(500, seed=11)
    batch = read_batch([orjson.dumps(e) for e in events])
    assert batch.slow == []
    for row, record in enumerate(events):
        assert _fast_values(batch, row) == _model_values(CustomerEvent.model_validate(record))


@pytest.mark.parametrize("field", sorted(FIELDS))
@pytest.mark.parametrize("value", TRICKY)
def test_a_tricky_value_in_any_field_is_read_alike_or_left_to_the_model(field: str, value: Any) -> None:
    for shape, reshape in SHAPES.items():
        _assert_agrees(orjson.dumps(reshape(_event()) | _named(shape, {field: value})))


def _named(shape: str, changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` under the field names of ``shape``."""
    if shape == "cased":
        return _cased(_telco(changes))
    return _telco(changes) if shape in ("telco", "csv_row") else changes


@pytest.mark.parametrize("field", [*FEATURES, "customer_id", "event_id", "event_time"])
def test_a_missing_field_goes_to_the_model_unless_it_is_optional(field: str) -> None:
    record = _event()
    del record[field]
    batch = read_batch([orjson.dumps(record)])
    if field in ("total_charges", "event_id"):  # optional: missing means unknown
        assert batch.slow == [] and columns_of(batch.events)[field] == [None]
    elif field == "event_time":  # optional: the scorer takes the record's timestamp
        assert batch.slow == [] and batch.event_times == [None]
    else:
        assert batch.slow == [0]


def test_telco_column_names_take_the_fast_path_and_read_the_same() -> None:
    record = _event()
    telco = _telco(record)
    assert read_batch([orjson.dumps(telco)]).slow == []
    assert CustomerEvent.model_validate(telco) == CustomerEvent.model_validate(record)
    _assert_agrees(orjson.dumps(telco))


def test_a_naming_in_another_case_is_learned_and_read_as_the_contract_reads_it() -> None:
    """Exports differ in case (``Tenure``); a record whose keys each name one field teaches a naming."""
    events = synthetic_events(20, seed=14)
    values = [orjson.dumps(_cased(_csv_row(e))) for e in events]
    batch = read_batch(values)
    assert batch.slow == [row for row, e in enumerate(events) if e["total_charges"] is None]
    for row, value in enumerate(values):
        if row not in batch.slow:
            assert _fast_values(batch, row) == _model_values(_slow_path(value))  # type: ignore[arg-type]
    assert read_batch(values).slow == batch.slow  # and the next batch is read with it at once


def test_only_a_few_namings_are_learned() -> None:
    from scorer import fast_check
    from scorer.fast_check import MAX_LEARNED_NAMINGS

    namings = fast_check._NAMINGS
    record = _csv_row(_event())
    for k in range(MAX_LEARNED_NAMINGS + 3):
        odd = {(name.upper() if i <= k else name): v for i, (name, v) in enumerate(record.items())}
        batch = read_batch([orjson.dumps(odd)])
        assert batch.slow == ([] if k < MAX_LEARNED_NAMINGS else [0])
        assert _slow_path(orjson.dumps(odd)) is not None
    assert len(namings.decoders) == 2 + MAX_LEARNED_NAMINGS


@pytest.mark.parametrize(
    "keys",
    [
        {"monthly_charges": 1.0, "MonthlyCharges": 2.0},  # one field under two exact names
        {"Tenure": 1, "TENURE": 2},  # one field in two other cases
        {"Note": "x"},  # a field the model ignores
    ],
)
def test_a_naming_that_is_not_one_name_per_field_is_left_to_the_contract(keys: dict[str, Any]) -> None:
    record = {k: v for k, v in _event().items() if k not in ("tenure", "monthly_charges")}
    record |= {"tenure": 3, "monthly_charges": 5.0} if "Note" in keys else {}
    value = orjson.dumps(_csv_row(record) | keys)
    assert read_batch([value]).slow == [0]


@pytest.mark.parametrize("field", ["customer_id", "event_id"])
@pytest.mark.parametrize(
    "character",
    [
        "\x00",
        "\x1b",
        "\x7f",
        "\x85",
        "\x9b",
        "\u061c",
        "\u200e",
        "\u200f",
        "\u202a",
        "\u202e",
        "\u2066",
        "\u2069",
    ],
    ids=lambda c: f"U+{ord(c):04X}",
)
def test_ids_with_control_or_bidi_characters_are_refused(field: str, character: str) -> None:
    """Written as orjson writes them (C0 escaped, the rest as raw UTF-8): refused by type and field."""
    value = orjson.dumps(_event(**{field: f"ab{character}cd"}))
    assert read_batch([value]).slow == [0]
    rejection = read_event(value, BatchLimits().max_event_bytes)
    assert isinstance(rejection, Rejection)
    assert (rejection.error_type, rejection.field) == ("invalid_characters", field)


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
)
def test_what_is_not_an_event_object_goes_to_the_model(value: bytes) -> None:
    assert read_batch([orjson.dumps(_event()), value]).slow == [1]


def test_only_the_odd_rows_of_a_batch_are_left_to_the_model() -> None:
    events = synthetic_events(6, seed=2)
    events[1]["partner"] = True  # lenient: the model reads it as "Yes"
    events[4]["tenure"] = " 12"  # lenient: padded text
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


def _number_text() -> st.SearchStrategy[str]:
    """Numbers written as text the way people and tools write them, and near misses."""
    digits = st.text("0123456789", min_size=1, max_size=12)
    return st.one_of(
        st.integers(min_value=-10, max_value=20_000).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.floats(min_value=0, max_value=20_000).map(lambda x: f"{x:.2f}"),
        st.floats(min_value=0, max_value=20_000).map(lambda x: f"{x:g}"),
        st.builds(lambda a, b: f"{a}.{b}", digits, digits),
        st.builds(lambda a, b: f"{a}e{b}", digits, st.integers(-400, 400)),
        st.builds(lambda pad, n: f"{pad}{n}{pad}", st.sampled_from([" ", "\t", "\u00a0", "+", "0"]), digits),
    )


VALUES = st.one_of(
    st.sampled_from(TRICKY),
    st.integers(min_value=-5, max_value=20_000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    _number_text(),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.sampled_from(sorted(SHAPES)),
    changes=st.dictionaries(st.sampled_from(sorted(FIELDS)), VALUES, max_size=4),
)
def test_random_changes_never_let_the_fast_path_disagree_with_the_model(
    shape: str, changes: dict[str, Any]
) -> None:
    record = SHAPES[shape](dict(_OTHER))
    _assert_agrees(orjson.dumps(record | _named(shape, changes)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.sampled_from(sorted(SHAPES)),
    position=st.integers(min_value=0, max_value=10_000),
    byte=st.integers(min_value=0, max_value=255),
)
def test_a_changed_byte_never_lets_the_fast_path_disagree_with_the_slow_path(
    shape: str, position: int, byte: int
) -> None:
    value = bytearray(orjson.dumps(SHAPES[shape](dict(_OTHER))))
    value[position % len(value)] = byte
    _assert_agrees(bytes(value))


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_writes_the_same_prediction(predictor: Any, shape: str) -> None:
    """The same customer in each shape (fast path) and padded (the contract's slow path)."""
    record = _event()
    padded = _csv_row(record) | {"tenure": f" {record['tenure']} "}
    values = [orjson.dumps(record), orjson.dumps(SHAPES[shape](record)), orjson.dumps(padded)]
    assert read_batch(values).slow == [2]
    raws = [RawRecord(v, b"k", "customer-events", 0, i, None) for i, v in enumerate(values)]
    result = score_batch(raws, predictor, BatchLimits())
    assert not result.dead_letters
    first, *others = (orjson.loads(p.value or b"")["churn_probability"] for p in result.predictions)
    assert others == [pytest.approx(first, abs=1e-12)] * 2  # the same inputs; rows may round apart in BLAS


def test_the_colon_count_rests_on_facts_about_the_struct() -> None:
    """The repeated-key check assumes colon-free vocabularies and the two optional fields last."""
    from schemas.features import CATEGORIES
    from scorer.fast_check import _OPTIONALS, CanonicalEvent, TelcoEvent

    assert not any(":" in level for levels in CATEGORIES.values() for level in levels)
    for struct in (CanonicalEvent, TelcoEvent):
        assert struct.__struct_fields__[-len(_OPTIONALS) :] == _OPTIONALS
        assert set(struct.__struct_fields__) == {*FIELDS, "churn"}


def test_the_learned_namings_rest_on_facts_about_the_struct() -> None:
    """``_Namings.learn`` takes every field a case-folded name points at as a field of the structs."""
    from schemas.features import FOLDED_NAMES
    from scorer.fast_check import CanonicalEvent

    assert set(FOLDED_NAMES.values()) == set(CanonicalEvent.__struct_fields__)


def test_a_fields_range_is_the_contracts_at_both_ends() -> None:
    from schemas.features import NUMERIC_RANGES
    from scorer.fast_check import _bounded

    for name, (low, high) in NUMERIC_RANGES.items():
        kind = int if name == "tenure" else float
        decode = msgspec.json.Decoder(_bounded(kind, name)).decode
        assert (decode(orjson.dumps(low)), decode(orjson.dumps(high))) == (low, high)
        for outside in (low - 1, high + 1):
            with pytest.raises(msgspec.ValidationError):
                decode(orjson.dumps(outside))


def _never(*args: Any) -> Any:
    raise AssertionError(f"a clean batch took the row-by-row path: {args!r}")


@pytest.fixture
def bulk_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if a batch is decoded, checked or timed row by row instead of a column at a time."""
    from scorer import fast_check

    for name in ("_decode_or_none", "_identifier_ok", "_expected_colons", "_parse_time"):
        monkeypatch.setattr(fast_check, name, _never)


def _clean_batch(shape: str) -> list[bytes]:
    """Well-formed rows that exercise every bulk check: colons in ids, optional fields absent or null."""
    events = synthetic_events(6, seed=21)
    events[0] |= {"customer_id": "a:b:c", "event_id": "e:1", "schema_version": 1, "total_charges": None}
    del events[1]["event_id"]
    del events[2]["event_time"]
    events[3]["churn"] = "No"
    events[4] |= {"tenure": str(events[4]["tenure"]), "monthly_charges": str(events[4]["monthly_charges"])}
    return [orjson.dumps(SHAPES[shape](event)) for event in events]


@pytest.mark.parametrize("shape", ["canonical", "telco", "cased"])
def test_a_clean_batch_is_read_a_column_at_a_time(bulk_only: None, shape: str) -> None:
    values = _clean_batch(shape)
    if shape == "cased":
        from scorer import fast_check

        learned = fast_check._NAMINGS.learn(values[3])  # the row that names every field
        assert learned is not None
    batch = read_batch(values)
    assert batch.slow == []
    assert [when is None for when in batch.event_times] == [False, False, True, False, False, False]
    # every row timed: the parsed column is returned as it is
    timed = [v for v in values if b'"event_time"' in v] * 2
    assert None not in read_batch(timed).event_times


def test_the_producers_naming_is_tried_first_and_a_batchs_naming_is_kept(bulk_only: None) -> None:
    from scorer import fast_check

    calls: list[int] = []
    namings = fast_check._NAMINGS

    def counted(index: int, decode: Any) -> Any:
        def wrapped(value: bytes) -> Any:
            calls.append(index)
            return decode(value)

        return wrapped

    namings.decoders = [counted(i, d) for i, d in enumerate(namings.decoders)]
    canonical = _clean_batch("canonical")
    read_batch(canonical)
    assert set(calls) == {0}
    calls.clear()
    assert read_batch(_clean_batch("telco")).slow == []  # one failed try of the canonical naming
    assert calls[0] == 0 and set(calls[1:]) == {1}
    calls.clear()
    read_batch(_clean_batch("telco"))
    assert set(calls) == {1}


def test_a_new_scorers_namings_read_numbers_written_as_text() -> None:
    from scorer import fast_check

    namings = fast_check._Namings()
    record = _event(tenure="12", monthly_charges="29.85", total_charges="29.85", schema_version="1")
    assert namings.decoders[0](orjson.dumps(record)).monthly_charges == 29.85
    assert namings.decoders[1](orjson.dumps(_telco(record))).tenure == 12
    # the built-in namings are not learned again
    assert namings.learn(orjson.dumps(record)) is None
    assert namings.learn(orjson.dumps(_telco(record))) is None
    assert len(namings.decoders) == 2


@pytest.mark.parametrize("keys", [{"Tenure": 1, "TENURE": 2}, {"Tenure": 1, "Note": 2}])
def test_a_refused_naming_is_not_learned(keys: dict[str, Any]) -> None:
    from scorer import fast_check

    namings = fast_check._Namings()
    assert namings.learn(orjson.dumps(keys)) is None
    assert len(namings.decoders) == len(namings.names) == 2


def test_a_learned_naming_is_exactly_its_keys() -> None:
    from scorer import fast_check

    namings = fast_check._Namings()
    value = orjson.dumps(_cased(_telco(_event())))
    decode = namings.learn(value)
    assert decode is not None
    assert decode(value).tenure == _BASE["tenure"]
    with pytest.raises(msgspec.ValidationError):
        decode(value[:-1] + b',"Note":1}')


def test_one_bad_id_sends_only_its_own_row_to_the_model() -> None:
    events = synthetic_events(3, seed=22)
    events[0]["event_id"] = " padded"
    del events[1]["event_id"]
    assert read_batch([orjson.dumps(e) for e in events]).slow == [0]


def test_times_read_row_by_row_keep_their_offset_and_naive_ones_are_utc() -> None:
    events = synthetic_events(3, seed=23)
    events[0]["event_time"] = "2026-13-26T10:00:00Z"  # the plain form, not a date: the model's to word
    events[1]["event_time"] = "2026-11-26T10:00:00+02:00"
    events[2]["event_time"] = "2026-11-26T10:00:00"
    batch = read_batch([orjson.dumps(e) for e in events])
    assert batch.slow == [0]
    assert batch.event_times[1] == datetime(2026, 11, 26, 8, tzinfo=UTC)
    assert batch.event_times[1].utcoffset() == timedelta(hours=2)  # type: ignore[union-attr]
    assert batch.event_times[2] == datetime(2026, 11, 26, 10, tzinfo=UTC)


def test_a_learned_naming_is_not_learned_again_for_an_odd_record() -> None:
    """A record in a learned naming, with a field the first one lacked and an odd value: not a new naming."""
    from scorer import fast_check

    namings = fast_check._Namings()
    first = _cased(_telco({k: v for k, v in _event().items() if k != "event_id"}))
    assert namings.learn(orjson.dumps(first)) is not None
    odd = _cased(_telco(_event(tenure=-1)))  # event_id present, under its only name
    assert namings.learn(orjson.dumps(odd)) is None
    assert len(namings.decoders) == 3
