"""Structured mutations of valid customer events, for fuzzing the batch core.

Each mutation takes a random generator and a valid event (as a dict) and returns the
bytes of a record a hostile or broken producer could send: deep nesting, extreme
numbers, long strings, lone surrogates (escaped and as raw bytes), escapes, control
characters, repeated keys, wrong JSON types, byte-order marks, truncation, flipped
bytes, invalid UTF-8, odd date-times... :func:`mutant` picks one or a few at random;
``MUTATIONS`` names them all.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import orjson

Event = dict[str, Any]
Mutation = Callable[[random.Random, Event], bytes]

FIELDS = (
    "customer_id", "event_id", "event_time", "gender", "senior_citizen", "partner", "dependents", "tenure",
    "phone_service", "multiple_lines", "internet_service", "online_security", "online_backup",
    "device_protection", "tech_support", "streaming_tv", "streaming_movies", "contract",
    "paperless_billing", "payment_method", "monthly_charges", "total_charges", "schema_version",
)  # fmt: skip
NUMBERS = (
    b"0", b"-0", b"0.0", b"-0.0", b"1", b"-1", b"1.5", b"1e2", b"1E-2", b"1e308", b"1e309", b"-1e309",
    b"1e-400", b"18446744073709551616", b"9" * 400, b"1" + b"0" * 5000, b"NaN", b"Infinity", b"-Infinity",
    b"01", b"+1", b".5", b"1.", b"0x10", b"1_000", b"\xd9\xa1",
)  # fmt: skip
TIMES = (
    "2024-02-30T00:00:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2024-01-01",
    "2024-01-01T00:00:00.1234567Z", "now", "", "2024-01-01T24:00:00", "2024-13-01T00:00:00Z",
    "2024-01-01T00:00:00+25:00", "2024-01-01 00:00:00", "20240101T000000Z", "1970-01-01T00:00:00Z",
)  # fmt: skip
STRING_BITS = (
    b"\\ud800", b"\\udfff", b"\\ud800\\u0041", b"\\udc00\\ud800", b"\xed\xa0\x80", b"\xed\xbf\xbf",
    b'\\"', b"\\\\", b"\\/", b"\\b", b"\\u0000", b"\\u00e9", b"\\n", b"\\x41", b"\\u12", b"\\",
    b"\x00", b"\x01", b"\x1f", b"\x7f", b"\t", b"\n", b"\xc0\xaf", b"\xf4\x90\x80\x80",
    b"\xf8\x88\x80\x80\x80", b"\xe2\x80\xa8", b"\xef\xbb\xbf", b"\xf0\x9f\x98\x80",
    b"'", b":", b'":"', b"{", b"]",
)  # fmt: skip
WRONG_TYPES = (b"[]", b"{}", b"true", b"false", b"null", b'"text"', b"1", b'[1,"a",{}]', b'{"a":{"b":[]}}')


def _field(rng: random.Random, event: Event) -> str:
    return rng.choice([name for name in FIELDS if name in event] or ["customer_id"])


def _replace_value(event: Event, name: str, raw: bytes) -> bytes:
    """The event's JSON with the value of ``name`` written as the raw bytes ``raw``."""
    marker = "\x00marker\x00"
    text = orjson.dumps({**event, name: marker})
    return text.replace(orjson.dumps(marker), raw)


def deep_nesting(rng: random.Random, event: Event) -> bytes:
    depth = rng.choice([2, 10, 63, 64, 65, 100, 1000, 5000, 30000])
    open_, close = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
    inner = open_ * depth + b"1" + close * depth if open_ != b"[" else b"[" * depth + b"]" * depth
    if rng.random() < 0.3:
        return inner
    return _replace_value(event, rng.choice([_field(rng, event), "extra"]), inner)


def extreme_number(rng: random.Random, event: Event) -> bytes:
    return _replace_value(
        event,
        rng.choice(["tenure", "monthly_charges", "total_charges", "senior_citizen"]),
        rng.choice(NUMBERS),
    )


def long_string(rng: random.Random, event: Event) -> bytes:
    size = rng.choice([0, 1, 127, 128, 129, 1000, 70_000])
    char = rng.choice(["x", " ", "é", "😀", "\\"])
    return orjson.dumps({**event, _field(rng, event): char * size})


def odd_string_bits(rng: random.Random, event: Event) -> bytes:
    name = rng.choice(["customer_id", "event_id", "gender", "contract", "event_time", "note"])
    value = str(event.get(name, "v")).encode()
    cut = rng.randrange(len(value) + 1)
    return _replace_value(event, name, b'"' + value[:cut] + rng.choice(STRING_BITS) + value[cut:] + b'"')


def repeated_key(rng: random.Random, event: Event) -> bytes:
    name = _field(rng, event)
    text = orjson.dumps(event)
    spelling = (
        name.encode() if rng.random() < 0.7 else name.replace(name[0], f"\\u{ord(name[0]):04x}", 1).encode()
    )
    again = orjson.dumps(event.get(name, 1)) if rng.random() < 0.5 else rng.choice(WRONG_TYPES)
    return text[:-1] + b',"' + spelling + b'":' + again + b"}"


def wrong_type(rng: random.Random, event: Event) -> bytes:
    return _replace_value(event, _field(rng, event), rng.choice(WRONG_TYPES))


def missing_field(rng: random.Random, event: Event) -> bytes:
    return orjson.dumps({k: v for k, v in event.items() if k != _field(rng, event)})


def byte_order_mark(rng: random.Random, event: Event) -> bytes:
    return rng.choice(
        [b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf\xef\xbb\xbf"]
    ) + orjson.dumps(event)


def truncation(rng: random.Random, event: Event) -> bytes:
    text = orjson.dumps(event)
    return text[: rng.randrange(len(text))]


def flipped_bytes(rng: random.Random, event: Event) -> bytes:
    text = bytearray(orjson.dumps(event))
    for _ in range(rng.randint(1, 5)):
        position = rng.randrange(len(text))
        action = rng.random()
        if action < 0.4:
            text[position] = rng.randrange(256)
        elif action < 0.7:
            text.insert(position, rng.randrange(256))
        elif len(text) > 1:
            del text[position]
    return bytes(text)


def padding(rng: random.Random, event: Event) -> bytes:
    space = rng.choice([b" ", b"\t", b"\r\n", b"\n" * 100, b"\xc2\xa0", b"\x0b", b"\x00"])
    text = orjson.dumps(event, option=orjson.OPT_INDENT_2) if rng.random() < 0.5 else orjson.dumps(event)
    return space + text + space


def telco_spelling(rng: random.Random, event: Event) -> bytes:
    from schemas.features import TELCO_ALIASES  # the contract's own alias table

    renamed = {TELCO_ALIASES.get(k, k) if rng.random() < 0.5 else k: v for k, v in event.items()}
    if rng.random() < 0.5:
        renamed = {k: (str(v) if isinstance(v, int | float) else v) for k, v in renamed.items()}
    return orjson.dumps(renamed)


def not_an_object(rng: random.Random, event: Event) -> bytes:
    return rng.choice([b"[" + orjson.dumps(event) + b"]", b'"hello"', b"42", b"null", b"true", b"[]", b'""'])


def many_keys(rng: random.Random, event: Event) -> bytes:
    extra = b",".join(b'"k%d":%d' % (i, i) for i in range(rng.choice([100, 3000])))
    return orjson.dumps(event)[:-1] + b"," + extra + b"}"


def odd_time(rng: random.Random, event: Event) -> bytes:
    value = rng.choice([*TIMES, 1_700_000_000, None, ["2024"]])
    return orjson.dumps({**event, "event_time": value})


def random_bytes(rng: random.Random, event: Event) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.randrange(200)))


MUTATIONS: dict[str, Mutation] = {
    mutation.__name__: mutation
    for mutation in (
        deep_nesting, extreme_number, long_string, odd_string_bits, repeated_key, wrong_type, missing_field,
        byte_order_mark, truncation, flipped_bytes, padding, telco_spelling, not_an_object, many_keys,
        odd_time, random_bytes,
    )
}  # fmt: skip


def mutant(rng: random.Random, event: Event) -> bytes:
    """One mutation of ``event`` (now and then two, the second applied to the first's JSON, if any)."""
    value = rng.choice(list(MUTATIONS.values()))(rng, event)
    if rng.random() < 0.15:
        try:
            twice = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
        if isinstance(twice, dict):
            try:
                return rng.choice(list(MUTATIONS.values()))(rng, twice)
            except orjson.JSONEncodeError:  # nested deeper than orjson writes: keep the first mutant
                return value
    return value
