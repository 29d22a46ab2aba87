"""A catalogue of bad customer-event records and the dead-letter type each must get."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from producer.events import synthetic_events


@dataclass(frozen=True)
class Bad:
    name: str
    value: bytes | None
    error_type: str
    key: bytes | None = b"bad-key"


def _with(base: dict[str, Any], **changes: Any) -> bytes:
    event = dict(base)
    for name, value in changes.items():
        if value is _DROP:
            event.pop(name, None)
        else:
            event[name] = value
    return orjson.dumps(event)


_DROP = object()


#: Just under librdkafka's default ``message.max.bytes`` (1,000,000) so that the
#: producer, the broker and the dead-letter re-publish all accept it.
ONE_MB = 990_000


def bad_records(max_event_bytes: int = 64 * 1024) -> list[Bad]:
    """Every kind of bad input the scorer must dead-letter, one or more records each."""
    base = synthetic_events(1, seed=99)[0]
    good = orjson.dumps(base)
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    return [
        Bad("tombstone", None, "empty_value"),
        Bad("zero_bytes", b"", "empty_value"),
        Bad("whitespace", b"  \n ", "empty_value"),
        Bad("oversize", good[:-1] + b', "padding": "' + b"x" * max_event_bytes + b'"}', "oversize"),
        Bad("one_megabyte", good[:-1] + b', "padding": "' + b"x" * (ONE_MB - len(good)) + b'"}', "oversize"),
        Bad("latin1", good.replace(b'"Female"', b'"F\xe9male"').replace(b'"Male"', b'"M\xe9le"'), "not_utf8"),
        Bad("truncated_json", good[: len(good) // 2], "invalid_json"),
        Bad("plain_text", b"hello, world", "invalid_json"),
        Bad("json_array", b"[" + good + b"]", "not_an_object"),
        Bad("json_number", b"42", "not_an_object"),
        Bad("duplicate_tenure", good[:-1] + b', "tenure": 5}', "duplicate_keys"),
        Bad("missing_tenure", _with(base, tenure=_DROP), "missing_field"),
        Bad("missing_customer_id", _with(base, customer_id=_DROP), "missing_field"),
        Bad("blank_tenure", _with(base, tenure=" "), "missing_field"),
        Bad("tenure_as_list", _with(base, tenure=[1, 2]), "wrong_type"),
        Bad("tenure_as_bool", _with(base, tenure=True), "wrong_type"),
        Bad("charges_as_text", _with(base, monthly_charges="lots"), "wrong_type"),
        Bad("fractional_tenure", _with(base, tenure=3.5), "not_integer"),
        Bad("negative_tenure", _with(base, tenure=-1), "out_of_range"),
        Bad("huge_charges", _with(base, monthly_charges=1e9), "out_of_range"),
        Bad("huge_tenure", _with(base, tenure=_DROP)[:-1] + b',"tenure":' + b"9" * 40 + b"}", "out_of_range"),
        Bad("nan_charges", good.replace(b'"monthly_charges":', b'"monthly_charges":NaN,"x":'), "not_finite"),
        Bad(
            "infinity_charges",
            good.replace(b'"monthly_charges":', b'"monthly_charges":Infinity,"x":'),
            "not_finite",
        ),
        Bad(
            "overflow_charges",
            _with(base, monthly_charges=_DROP)[:-1] + b',"monthly_charges":1e999}',
            "not_finite",
        ),
        Bad("unknown_contract", _with(base, contract="Lifetime"), "unknown_category"),
        Bad("lowercase_gender", _with(base, gender="female"), "unknown_category"),
        Bad("empty_customer_id", _with(base, customer_id=""), "empty_string"),
        Bad("long_event_id", _with(base, event_id="e" * 500), "too_long"),
        Bad("escape_in_customer_id", _with(base, customer_id="7590\x1b[31mVHVEG"), "invalid_characters"),
        Bad("bidi_in_event_id", _with(base, event_id="evt-\u202e1-gnp"), "invalid_characters"),
        Bad("nul_in_customer_id", _with(base, customer_id="7590\x00VHVEG"), "invalid_characters"),
        Bad("tenure_in_words", _with(base, tenure="twelve"), "wrong_type"),
        Bad("tenure_with_separator", _with(base, tenure="1,000"), "wrong_type"),
        Bad("nan_as_text", _with(base, monthly_charges="NaN"), "not_finite"),
        Bad("bad_event_time", _with(base, event_time="yesterday"), "invalid_timestamp"),
        Bad("future_event_time", _with(base, event_time=future), "event_from_future"),
        Bad("schema_v99", _with(base, schema_version=99), "unsupported_schema_version"),
        Bad("senior_maybe", _with(base, senior_citizen="maybe"), "invalid_value"),
    ]
