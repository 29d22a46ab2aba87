"""The wire contract: what CustomerEvent accepts, and every reason it rejects."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from schemas import (
    CATEGORIES,
    FEATURES,
    ChurnPrediction,
    CustomerEvent,
    DeadLetter,
    Reason,
    prediction_payloads,
)
from schemas.features import TELCO_ALIASES


def event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": "e-1",
        "event_time": "2026-11-26T07:00:00Z",
        "customer_id": "7590-VHVEG",
        "gender": "Female",
        "senior_citizen": 0,
        "partner": "Yes",
        "dependents": "No",
        "tenure": 1,
        "phone_service": "No",
        "multiple_lines": "No phone service",
        "internet_service": "DSL",
        "online_security": "No",
        "online_backup": "Yes",
        "device_protection": "No",
        "tech_support": "No",
        "streaming_tv": "No",
        "streaming_movies": "No",
        "contract": "Month-to-month",
        "paperless_billing": "Yes",
        "payment_method": "Electronic check",
        "monthly_charges": 29.85,
        "total_charges": 29.85,
    }
    base.update(overrides)
    return base


def errors(payload: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        CustomerEvent.model_validate(payload)
    return info.value.errors()


def test_valid_event_round_trips_through_json() -> None:
    parsed = CustomerEvent.model_validate_json(json.dumps(event()))
    assert parsed.customer_id == "7590-VHVEG"
    assert parsed.event_time == datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
    assert parsed.schema_version == 1
    again = CustomerEvent.model_validate_json(parsed.model_dump_json())
    assert again == parsed


def test_telco_column_names_are_accepted_as_aliases() -> None:
    snake = event()
    telco = {TELCO_ALIASES.get(k, k): v for k, v in snake.items()}
    assert "customerID" in telco and "MonthlyCharges" in telco
    assert CustomerEvent.model_validate(telco) == CustomerEvent.model_validate(snake)


@pytest.mark.parametrize("blank", ["", " ", "   "])
def test_blank_total_charges_means_missing(blank: str) -> None:
    assert CustomerEvent.model_validate(event(total_charges=blank)).total_charges is None


def test_total_charges_may_be_absent_or_text() -> None:
    payload = event()
    del payload["total_charges"]
    assert CustomerEvent.model_validate(payload).total_charges is None
    assert CustomerEvent.model_validate(event(total_charges="1889.50")).total_charges == 1889.5


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (1, 1), (True, 1), (False, 0), ("1", 1), ("No", 0)])
def test_senior_citizen_accepts_flags_and_booleans(value: Any, expected: int) -> None:
    assert CustomerEvent.model_validate(event(senior_citizen=value)).senior_citizen == expected


def test_yes_no_fields_accept_booleans() -> None:
    parsed = CustomerEvent.model_validate(event(partner=True, dependents=False))
    assert (parsed.partner, parsed.dependents) == ("Yes", "No")


def test_extra_fields_are_ignored_and_schema_version_carried() -> None:
    parsed = CustomerEvent.model_validate(event(loyalty_tier="gold", schema_version=2))
    assert not hasattr(parsed, "loyalty_tier")
    assert parsed.schema_version == 2


@pytest.mark.parametrize(
    ("field", "value", "error_type"),
    [
        ("contract", "Weekly", "literal_error"),
        ("payment_method", "Cash", "literal_error"),
        ("gender", "F", "literal_error"),
        ("internet_service", "Satellite", "literal_error"),
        ("tenure", -1, "greater_than_equal"),
        ("tenure", 100_000, "less_than_equal"),
        ("tenure", 12.5, "int_from_float"),
        ("tenure", "twelve", "float_parsing"),
        ("tenure", "1,000", "float_parsing"),
        ("tenure", " ", "blank"),
        ("tenure", "NaN", "finite_number"),
        ("customer_id", "a\x1bb", "invalid_characters"),
        ("customer_id", "a\u202eb", "invalid_characters"),
        ("event_id", "a\x00b", "invalid_characters"),
        ("tenure", True, "value_error"),
        ("monthly_charges", -0.01, "greater_than_equal"),
        ("monthly_charges", 1e12, "less_than_equal"),
        ("monthly_charges", float("nan"), "finite_number"),
        ("monthly_charges", float("inf"), "finite_number"),
        ("monthly_charges", "abc", "float_parsing"),
        ("monthly_charges", [1], "float_type"),
        ("total_charges", -5, "greater_than_equal"),
        ("senior_citizen", 2, "less_than_equal"),
        ("senior_citizen", "maybe", "value_error"),
        ("customer_id", "", "string_too_short"),
        ("customer_id", {"id": 1}, "value_error"),
        ("event_time", "yesterday", "datetime_from_date_parsing"),
    ],
)
def test_rejections_name_the_field(field: str, value: Any, error_type: str) -> None:
    [error] = errors(event(**{field: value}))
    assert error["loc"][0] == field
    assert error["type"] == error_type
    assert error["msg"]


@pytest.mark.parametrize("field", [*FEATURES[:-1], "customer_id"])
def test_every_required_field_is_required(field: str) -> None:
    payload = event()
    del payload[field]
    [error] = errors(payload)
    assert error["type"] == "missing"
    assert error["loc"][0] == field


def test_unknown_category_message_lists_the_vocabulary() -> None:
    [error] = errors(event(contract="Weekly"))
    for level in CATEGORIES["contract"]:
        assert level in error["msg"]


def test_naive_event_time_is_taken_as_utc() -> None:
    parsed = CustomerEvent.model_validate(event(event_time="2026-11-26T07:00:00"))
    assert parsed.event_time.tzinfo is not None
    assert parsed.event_time.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_event_id_and_time_are_optional_and_left_to_the_reader() -> None:
    payload = event()
    del payload["event_id"], payload["event_time"]
    parsed = CustomerEvent.model_validate(payload)
    assert (parsed.event_id, parsed.event_time) == (None, None)
    assert CustomerEvent.model_validate(event(event_id=None)).event_id is None


def test_prediction_rejects_probability_out_of_range() -> None:
    base = {
        "event_id": "e",
        "customer_id": "c",
        "churn": True,
        "threshold": 0.4,
        "model_version": "v",
        "scored_at": "2026-11-26T07:00:00Z",
    }
    assert ChurnPrediction.model_validate({**base, "churn_probability": 0.7}).churn
    with pytest.raises(ValidationError):
        ChurnPrediction.model_validate({**base, "churn_probability": 1.5})


def test_dead_letter_headers_round_trip() -> None:
    letter = DeadLetter(
        error_type="invalid_json",
        error_message="line 1: expected value",
        source_topic="customer-events",
        source_partition=3,
        source_offset=42,
    )
    headers = letter.headers()
    assert dict(headers)["source_offset"] == b"42"
    assert [name for name, _ in headers] == [
        "error_type",
        "error_message",
        "error_field",
        "source_topic",
        "source_partition",
        "source_offset",
        "failed_at",
    ]
    assert DeadLetter.from_headers(headers) == letter


def test_a_run_gets_topics_and_a_group_of_its_own_and_its_children_get_them_by_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from config.settings import Settings

    monkeypatch.setenv("CHURN_EVENTS_TOPIC", "from-the-parent")
    monkeypatch.setenv("UNRELATED", "kept")
    run = Settings(kafka_bootstrap_servers="h:1").for_run("bench", "t1", events_topic="preloaded")
    assert (run.events_topic, run.predictions_topic, run.dlq_topic, run.scorer_app_id) == (
        "preloaded",
        "bench-predictions-t1",
        "bench-dlq-t1",
        "bench-t1",
    )
    env = run.child_env("topic_partitions")
    assert env["UNRELATED"] == "kept"
    assert env["CHURN_EVENTS_TOPIC"] == "preloaded"
    assert env["CHURN_KAFKA_BOOTSTRAP_SERVERS"] == "h:1"
    assert env["CHURN_TOPIC_PARTITIONS"] == str(run.topic_partitions)
    assert not any(v == "from-the-parent" for v in env.values())


def test_prediction_payloads_validate_as_churn_predictions() -> None:
    scored_at = datetime(2026, 11, 26, 7, 0, 1, 250000, tzinfo=UTC)
    event_time = datetime(2026, 11, 26, 7, 0, 0, tzinfo=UTC)
    payloads = prediction_payloads(
        ["e-1", "e-2", "e-3"],
        ["c-1", "c-2", "c-3"],
        [event_time, "2026-11-26T07:00:00+00:00", None],
        [0.1, 0.5, 0.9],
        0.5,
        "v1",
        scored_at,
    )
    predictions = [ChurnPrediction.model_validate(p) for p in payloads]
    assert [p.event_id for p in predictions] == ["e-1", "e-2", "e-3"]
    assert [p.churn for p in predictions] == [False, True, True]  # at or above the threshold
    assert {p.model_version for p in predictions} == {"v1"}
    assert {p.scored_at for p in predictions} == {scored_at}
    assert [p.event_time for p in predictions] == [event_time, event_time, None]
    # ISO text and a datetime are written alike
    as_text = prediction_payloads(
        ["e-1"], ["c-1"], [event_time.isoformat()], [0.1], 0.5, "v1", scored_at.isoformat()
    )
    assert orjson.dumps(as_text[0]) == orjson.dumps(payloads[0])
    assert list(payloads[0]) == [f for f in ChurnPrediction.model_fields if not f.startswith("reasons")]


def test_prediction_payloads_with_reasons_validate_as_churn_predictions() -> None:
    scored_at = datetime(2026, 11, 26, 7, 0, 1, tzinfo=UTC)
    reasons: list[list[dict[str, Any]]] = [
        [{"feature": "contract", "value": "Month-to-month", "contribution": 0.75}],
        [
            {"feature": "tenure", "value": 2, "contribution": 0.5},
            {"feature": "total_charges", "value": None, "contribution": -0.25},
        ],
    ]
    payloads = prediction_payloads(
        ["e-1", "e-2"], ["c-1", "c-2"], [None, None], [0.7, 0.2], 0.5, "v1", scored_at, reasons=reasons
    )
    predictions = [ChurnPrediction.model_validate_json(orjson.dumps(p)) for p in payloads]
    assert [[r.model_dump() for r in p.reasons or []] for p in predictions] == reasons
    assert all(p.reasons_unavailable is None for p in predictions)

    unavailable = prediction_payloads(
        ["e-1"], ["c-1"], [None], [0.7], 0.5, "v1", scored_at, reasons_unavailable="a random forest"
    )
    (prediction,) = [ChurnPrediction.model_validate(p) for p in unavailable]
    assert unavailable[0]["reasons"] is None and prediction.reasons_unavailable == "a random forest"

    with pytest.raises(ValueError, match="zip"):  # one list of reasons per prediction
        prediction_payloads(["e-1"], ["c-1"], [None], [0.7], 0.5, "v1", scored_at, reasons=reasons)


def test_a_reason_refuses_a_non_finite_contribution_or_a_nested_value() -> None:
    with pytest.raises(ValidationError, match="finite"):
        Reason.model_validate({"feature": "tenure", "value": 2, "contribution": float("nan")})
    with pytest.raises(ValidationError):
        Reason.model_validate({"feature": "tenure", "value": [2], "contribution": 0.1})


def test_prediction_payloads_refuse_columns_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="zip"):
        prediction_payloads(["e-1"], ["c-1", "c-2"], [None], [0.5], 0.5, "v1", datetime.now(UTC))


def test_names_in_another_case_are_read_when_the_exact_name_is_absent() -> None:
    from schemas.contract import Rejection, validate_event

    snake = event()
    cased = {("Tenure" if k == "tenure" else "MONTHLYCHARGES" if k == "monthly_charges" else k): v
             for k, v in snake.items()}  # fmt: skip
    assert validate_event(cased) == validate_event(snake)
    both = snake | {"Tenure": 99}  # the exact name wins; the other is an unknown field
    assert validate_event(both).tenure == snake["tenure"]  # type: ignore[union-attr]
    twice = {k: v for k, v in cased.items() if k != "Tenure"} | {"Tenure": 1, "TENURE": 2}
    rejection = validate_event(twice)
    assert isinstance(rejection, Rejection)
    assert (rejection.error_type, rejection.field) == ("duplicate_keys", "tenure")


# -- the words of a refusal: the error_field and error_message headers of a dead letter ------------

_GOOD = orjson.dumps(event())


@pytest.mark.parametrize(
    ("value", "error_type", "field", "message"),
    [
        (b" \n", "empty_value", "", "record value is empty"),
        (
            _GOOD + b" " * 2000,
            "oversize",
            "",
            f"record value is {len(_GOOD) + 2000} bytes; the limit is 2000",
        ),
        (b"[" * 65 + b"]" * 65, "too_deep", "", "JSON nests deeper than 64 levels of arrays and objects"),
        (_GOOD[:40], "invalid_json", "", "not valid JSON: unexpected end of data (character 40)"),
        (b"[1]", "not_an_object", "", "record is a JSON array, not an object"),
        (b"\xff{}", "not_utf8", "", "value is not UTF-8: invalid byte at position 0"),  # no key before it
        (b"[NaN]", "not_finite", "", "NaN or Infinity is not a finite number"),
        (b"42", "not_an_object", "", "record is a JSON int, not an object"),
        (
            _GOOD.replace(b'"gender":"Female"', b'"gender":"F\xe9male"'),
            "not_utf8",
            "gender",
            f"gender: value is not UTF-8: invalid byte at position {_GOOD.index(b'Female') + 1}",
        ),
        (
            _GOOD.replace(b'"monthly_charges":29.85', b'"monthly_charges":NaN'),
            "not_finite",
            "monthly_charges",
            "monthly_charges: NaN or Infinity is not a finite number",
        ),
        (
            _GOOD.replace(b'"tenure":1', b'"tenure":-Infinity'),
            "not_finite",
            "tenure",
            "tenure: NaN or Infinity is not a finite number",
        ),
        (
            _GOOD.replace(b'"tenure":1', b'"tenure":1e999'),
            "not_finite",
            "tenure",
            "tenure: NaN or Infinity is not a finite number",
        ),
        (_GOOD[:-1] + b',"tenure":5}', "duplicate_keys", "tenure", "tenure: key appears more than once"),
        (
            orjson.dumps(event(tenure=5000)),
            "out_of_range",
            "tenure",
            "tenure: Input should be less than or equal to 1200 (got 5000)",
        ),
        (
            orjson.dumps({k: v for k, v in event().items() if k != "tenure"}),
            "missing_field",
            "tenure",
            "tenure: required field is missing",
        ),
        (
            orjson.dumps(event(senior_citizen="maybe")),  # pydantic's "Value error, " prefix is dropped
            "invalid_value",
            "senior_citizen",
            "senior_citizen: must be 0 or 1, Yes or No, true or false (got 'maybe')",
        ),
        (
            orjson.dumps(event(schema_version=2)),
            "unsupported_schema_version",
            "schema_version",
            "schema_version: 2 is newer than this reader's 1",
        ),
    ],
    ids=[
        "empty",
        "oversize",
        "too_deep",
        "invalid_json",
        "array",
        "not_utf8_at_start",
        "nan_in_an_array",
        "number",
        "not_utf8",
        "nan",
        "minus_infinity",
        "overflow",
        "duplicate",
        "out_of_range",
        "missing",
        "value_error",
        "schema_version",
    ],
)
def test_each_refusal_names_its_type_field_and_reason(
    value: bytes, error_type: str, field: str, message: str
) -> None:
    from schemas.contract import Rejection, read_event

    rejection = read_event(value, 2000)
    assert isinstance(rejection, Rejection)
    assert (rejection.error_type, rejection.field) == (error_type, field)
    assert rejection.message == message
    if " (got " not in message:  # the API's reason: the message without the field (and no input)
        assert rejection.errors[0].reason == message.removeprefix(f"{field}: ")


def test_the_field_errors_the_api_answers_with_give_the_reason_without_the_input() -> None:
    from schemas.contract import FieldError, Rejection, read_event

    rejection = read_event(orjson.dumps(event(tenure=5000, senior_citizen="maybe")), 64 * 1024)
    assert isinstance(rejection, Rejection)
    assert set(rejection.errors) == {
        FieldError("tenure", "Input should be less than or equal to 1200", "out_of_range"),
        FieldError("senior_citizen", "must be 0 or 1, Yes or No, true or false", "invalid_value"),
    }


def test_a_rejection_lists_five_field_errors_and_counts_the_rest() -> None:
    from schemas.contract import Rejection, read_event

    wrong = ("gender", "partner", "dependents", "phone_service", "contract", "paperless_billing", "tenure")
    rejection = read_event(orjson.dumps(event(**dict.fromkeys(wrong, "?"))), 64 * 1024)
    assert isinstance(rejection, Rejection)
    fields = [e.field for e in rejection.errors]
    assert sorted(fields) == sorted(wrong)  # every error, for the API's answer
    parts = rejection.message.split("; ")
    assert [p.split(":")[0] for p in parts[:5]] == fields[:5]
    assert parts[5:] == ["(+2 more)"]
    five = read_event(orjson.dumps(event(**dict.fromkeys(wrong[:5], "?"))), 64 * 1024)
    assert isinstance(five, Rejection) and "more)" not in five.message and five.message.count("; ") == 4


def test_a_future_event_time_is_refused_with_the_skew_in_the_message() -> None:
    from schemas.contract import future_rejection

    when = datetime(2030, 1, 1, tzinfo=UTC)
    rejection = future_rejection(when, 300.0)
    assert (rejection.error_type, rejection.field) == ("event_from_future", "event_time")
    expected = "event_time: 2030-01-01T00:00:00+00:00 is more than 300 s ahead of the scorer clock"
    assert rejection.message == expected


def test_a_byte_order_mark_on_the_first_key_is_ignored_unless_the_key_is_also_given_plainly() -> None:
    from schemas.contract import Rejection, validate_event

    plain = event()
    first, *rest = plain.items()
    marked = {"\ufeff" + first[0]: first[1], **dict(rest)}
    assert validate_event(marked) == validate_event(plain)
    twice = {"\ufeff" + first[0]: first[1], **plain}
    rejection = validate_event(twice)
    assert isinstance(rejection, Rejection)
    assert (rejection.error_type, rejection.field, rejection.message) == (
        "duplicate_keys",
        first[0],
        f"{first[0]}: key appears more than once",
    )


def test_a_field_given_in_two_other_cases_names_both_spellings() -> None:
    from schemas.contract import Rejection, validate_event

    twice = {k: v for k, v in event().items() if k != "tenure"} | {"Tenure": 1, "TENURE": 2}
    rejection = validate_event(twice)
    assert isinstance(rejection, Rejection)
    assert rejection.message == "tenure: given as 'Tenure' and 'TENURE'"


def test_the_api_reads_a_body_that_is_not_json_in_the_streams_words() -> None:
    from schemas.contract import BOM, json_rejection, read_event

    for body in (_GOOD[:40], _GOOD.replace(b'"monthly_charges":29.85', b'"monthly_charges":NaN')):
        rejection = json_rejection(BOM + body)
        assert rejection is not None
        assert rejection == read_event(BOM + body, 64 * 1024)
    assert json_rejection(BOM + _GOOD) is None
    assert json_rejection(b"[1]") is None  # one JSON document: the caller says what else is wrong
