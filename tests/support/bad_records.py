"""A catalogue of bad customer-event records and the dead-letter type each must get.

:func:`bad_records` lists records the scorer must refuse, each with its ``error_type``;
:func:`odd_but_valid` lists hostile-looking records that the contract accepts, so they
must be predicted (``error_type`` None); :func:`hostile_corpus` is both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from producer.events import synthetic_events


@dataclass(frozen=True)
class Bad:
    name: str
    value: bytes | None
    #: The dead letter's ``error_type``; None for a record that must be predicted.
    error_type: str | None
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


#: Over the dead-letter value limit (900,000 by default), so its dead letter is a truncated prefix.
ONE_MB = 990_000
#: As large as a default producer (``message.max.bytes`` 1,000,000) publishes with a short key:
#: its dead letter would not fit that limit with its headers unless it were cut.
NEAR_PRODUCER_LIMIT = 999_800


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
        *_hostile(base, good),
    ]


def _hostile(base: dict[str, Any], good: bytes) -> list[Bad]:
    """Records an attacker or a broken producer sends: deep nesting, odd bytes, sizes at the limits."""
    cid = base["customer_id"].encode()
    near_limit = good[:-1] + b', "padding": "' + b"y" * (NEAR_PRODUCER_LIMIT - len(good) - 15) + b'"}'
    return [
        Bad("deep_array_field", good[:-1] + b',"x":' + b"[" * 1000 + b"]" * 1000 + b"}", "too_deep"),
        Bad("deep_objects", b'{"a":' * 1000 + b"1" + b"}" * 1000, "too_deep"),
        Bad("bracket_flood", b"[" * 60_000, "too_deep"),
        Bad("lone_surrogate_escape", good.replace(cid, cid + b"\\ud800"), "invalid_json"),
        Bad("lone_surrogate_bytes", good.replace(cid, cid + b"\xed\xa0\x80"), "not_utf8"),
        Bad("truncated_utf8_sequence", good[:-1] + b',"note":"\xc3"}', "not_utf8"),
        Bad("raw_control_character", good.replace(cid, cid + b"\x01"), "invalid_json"),
        Bad("nul_after_document", good + b"\x00", "invalid_json"),
        Bad("json_string", b'"hello"', "not_an_object"),
        Bad("json_null", b"null", "not_an_object"),
        Bad("tenure_as_object", _with(base, tenure={"a": 1}), "wrong_type"),
        Bad("escaped_duplicate_key", good[:-1] + b',"ten\\u0075re":5}', "duplicate_keys"),
        Bad("blank_customer_id", _with(base, customer_id="   "), "empty_string"),
        Bad("near_producer_limit", near_limit, "oversize"),
        Bad("huge_key_not_json", b"not json at all", "invalid_json", key=b"k" * 200_000),
        Bad("far_future_year", _with(base, event_time="9999-12-31T23:59:59-01:00"), "event_from_future"),
        Bad(
            "many_digits_tenure",
            _with(base, tenure=_DROP)[:-1] + b',"tenure":' + b"1" * 5000 + b"}",
            "not_finite",
        ),
    ]


def odd_but_valid() -> list[Bad]:
    """Hostile-looking records that the contract accepts: each must be predicted, not dead-lettered."""
    base = synthetic_events(1, seed=98)[0]
    good = orjson.dumps(base)
    many_keys = b",".join(b'"extra_%d":%d' % (i, i) for i in range(2000))
    return [
        Bad("whitespace_padding", b"   " + good + b"\n\t ", None),
        Bad("unicode_customer_id", _with(base, customer_id="客户-😀"), None),
        Bad("two_thousand_extra_fields", good[:-1] + b"," + many_keys + b"}", None),
        Bad("escaped_key_name", good.replace(b'"tenure"', b'"ten\\u0075re"'), None),
        Bad("repeated_keys_inside_an_extra_object", good[:-1] + b',"x":{"a":1,"a":2}}', None),
        Bad("brackets_inside_a_string", _with(base, note="[" * 500 + "{" * 500), None),
        Bad("negative_zero_charges", _with(base, monthly_charges=-0.0), None),
        Bad("tiny_charges", good.replace(b'"monthly_charges":', b'"monthly_charges":1e-400,"x":'), None),
        Bad("tenure_as_text", _with(base, tenure="12"), None),
        Bad("huge_key_valid_event", good, None, key=b"k" * 200_000),
    ]


def hostile_corpus(max_event_bytes: int = 64 * 1024) -> list[Bad]:
    """Every record above: refused ones and odd valid ones."""
    return [*bad_records(max_event_bytes), *odd_but_valid()]


def _cut_to(
    original: bytes | None, kept: bytes | None, headers: Mapping[str, bytes], flag: str, size: str
) -> bool:
    """Whether ``kept`` is ``original``, or its prefix when the dead letter says it was cut."""
    if headers.get(flag) != b"true":
        return kept == original
    return (
        original is not None and kept == original[: len(kept or b"")] and int(headers[size]) == len(original)
    )


def dead_letter_of(
    catalogue: Sequence[Bad], key: bytes | None, value: bytes | None, headers: Mapping[str, bytes]
) -> Bad:
    """The one catalogue entry a dead letter (key, value, headers) was written for."""
    found = [
        bad
        for bad in catalogue
        if _cut_to(bad.value, value, headers, "truncated", "original_size")
        and _cut_to(bad.key, key, headers, "key_truncated", "original_key_size")
    ]
    assert len(found) == 1, [bad.name for bad in found]
    return found[0]
