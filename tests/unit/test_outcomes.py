"""The outcome record: schema, lenient label forms, its JSON Schema document, reading raw records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from kafka_io.records import RawRecord
from schemas import dead_letters, json_schema
from schemas.outcomes import CustomerOutcome
from scorer.quality_records import (
    CHALLENGER,
    CHAMPION,
    OutcomeSeen,
    PredictionSeen,
    Refused,
    read_outcome,
    read_prediction,
)
from tests.support.bad_records import bad_records

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Yes", True),
        ("No", False),
        ("yes", True),
        (" NO ", False),
        ("1", True),
        ("0", False),
        ("true", True),
        ("False", False),
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        (1.0, True),
    ],
)
def test_churned_accepts_the_csv_forms(value: object, expected: bool) -> None:
    assert CustomerOutcome.model_validate({"customer_id": "c-1", "churned": value}).churned is expected


@pytest.mark.parametrize("value", ["maybe", "", "2", 2, 0.5, None, [], {}])
def test_churned_refuses_anything_else(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        CustomerOutcome.model_validate({"customer_id": "c-1", "churned": value})
    assert info.value.errors()[0]["loc"] == ("churned",)


def test_telco_column_names_and_customer_id_rules_match_the_events() -> None:
    outcome = CustomerOutcome.model_validate({"customerID": 7590, "Churn": "Yes", "extra": "ignored"})
    assert (outcome.customer_id, outcome.churned, outcome.observed_at) == ("7590", True, None)
    for bad in ("", "x" * 129, True, 1.5, None):
        with pytest.raises(ValidationError) as info:
            CustomerOutcome.model_validate({"customer_id": bad, "churned": "No"})
        assert info.value.errors()[0]["loc"] == ("customer_id",)


def test_observed_at_is_optional_and_naive_times_are_utc() -> None:
    outcome = CustomerOutcome.model_validate(
        {"customer_id": "a", "churned": 0, "observed_at": "2026-03-01T12:00:00"}
    )
    assert outcome.observed_at == datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_the_published_outcome_schema_is_what_the_model_generates() -> None:
    committed = json.loads((ROOT / "docs" / "schemas" / "customer-outcome.json").read_text())
    assert committed == json_schema.schema("customer-outcome"), "run: churn contract export"
    assert committed["required"] == ["customer_id", "churned"]
    assert committed["properties"]["churned"]["type"] == "boolean"


# --- raw records -------------------------------------------------------------------------


def _record(
    value: bytes | None, *, timestamp: float | None = NOW, headers: list[tuple[str, bytes]] | None = None
):  # type: ignore[no-untyped-def]
    return RawRecord(value, b"c-1", "outcomes", 2, 41, timestamp, headers)


def test_an_outcome_without_observed_at_takes_the_record_timestamp() -> None:
    seen = read_outcome(
        _record(b'{"customer_id": "c-1", "churned": "Yes"}', timestamp=NOW - 60), 65536, NOW, 300
    )
    assert seen == OutcomeSeen("c-1", True, NOW - 60)
    stamped = orjson.dumps(
        {"customer_id": "c-1", "churned": False, "observed_at": "2026-03-01T11:00:00+00:00"}
    )
    assert read_outcome(_record(stamped), 65536, NOW, 300) == OutcomeSeen("c-1", False, NOW - 3600)


def test_every_bad_outcome_is_refused_with_a_dead_letter_type() -> None:
    cases = {
        b"": dead_letters.EMPTY_VALUE,
        b"\xff\xfe": dead_letters.NOT_UTF8,
        b"{not json": dead_letters.INVALID_JSON,
        b"[1, 2]": dead_letters.NOT_AN_OBJECT,
        b'{"customer_id": "a", "churned": NaN}': dead_letters.NOT_FINITE,
        b'{"customer_id": "a", "churned": "Yes", "churned": "No"}': dead_letters.DUPLICATE_KEYS,
        b'{"churned": "Yes"}': dead_letters.MISSING_FIELD,
        b'{"customer_id": "a", "churned": "maybe"}': dead_letters.INVALID_VALUE,
        b'{"customer_id": "a", "churned": "Yes", "observed_at": "yesterday"}': dead_letters.INVALID_TIMESTAMP,
        b'{"customer_id": "a", "churned": 1, "observed_at": "2026-03-09"}': dead_letters.EVENT_FROM_FUTURE,
        b'{"customer_id": "a", "churned": 1, "schema_version": 99}': dead_letters.UNSUPPORTED_SCHEMA_VERSION,
        b"{" + b" " * 70_000 + b"}": dead_letters.OVERSIZE,
    }
    for value, error_type in cases.items():
        refused = read_outcome(_record(value), 65536, NOW, 300)
        assert isinstance(refused, Refused), value[:60]
        assert refused.error_type == error_type, (value[:60], refused)
        assert refused.message


def test_the_scorers_hostile_corpus_never_raises_in_the_outcome_reader() -> None:
    for bad in bad_records():
        result = read_outcome(RawRecord(bad.value, bad.key, "outcomes", 0, 0, NOW), 65536, NOW, 300)
        assert isinstance(result, Refused | OutcomeSeen)


def test_predictions_take_their_role_from_the_header_or_the_topic() -> None:
    payload = {
        "event_id": "e-1",
        "customer_id": "c-1",
        "churn_probability": 0.25,
        "churn": False,
        "threshold": 0.4,
        "model_version": "v1",
        "scored_at": "2026-03-01T12:00:01+00:00",
        "event_time": "2026-03-01T12:00:00+00:00",
    }
    seen = read_prediction(_record(orjson.dumps(payload)), CHAMPION, 65536)
    assert seen == PredictionSeen("c-1", "v1", 0.25, 0.4, NOW, NOW + 1, CHAMPION)
    shadow = read_prediction(
        _record(orjson.dumps(payload), headers=[("role", b"challenger")]), CHAMPION, 65536
    )
    assert isinstance(shadow, PredictionSeen) and shadow.role == CHALLENGER
    odd = read_prediction(_record(orjson.dumps(payload), headers=[("role", b"boss")]), CHAMPION, 65536)
    assert isinstance(odd, Refused) and odd.error_type == dead_letters.INVALID_VALUE
    no_time = read_prediction(
        _record(orjson.dumps({**payload, "event_time": None}), timestamp=NOW - 5), CHAMPION, 65536
    )
    assert isinstance(no_time, PredictionSeen) and no_time.event_time == NOW - 5
    bad = read_prediction(_record(orjson.dumps({**payload, "churn_probability": 1.5})), CHAMPION, 65536)
    assert isinstance(bad, Refused) and bad.error_type == dead_letters.OUT_OF_RANGE
