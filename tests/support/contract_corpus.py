"""A seeded corpus of customer-event records: valid in every shape, borderline, and invalid.

Each :class:`Case` is the exact bytes a producer might send (or a client might
POST). ``csv_row`` is set when the record is a row a CSV file can hold: a flat
object of text values under the telco header, which ``csv.DictReader`` gives
back unchanged. The parity tests drive the same bytes through the stream's
batch function, the API and ``churn predict``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import orjson

from producer.events import synthetic_events
from schemas.features import FEATURES, TELCO_ALIASES

#: The header of the telco CSV the corpus's CSV rows follow (event_id/event_time are not in it).
CSV_HEADER = [TELCO_ALIASES[name] for name in ("customer_id", *FEATURES)] + ["Churn"]


@dataclass(frozen=True)
class Case:
    kind: str
    value: bytes
    csv_row: dict[str, str] | None = None


_NUMBER_TEXTS = [
    "0",
    "1",
    "12",
    "72",
    "1200",
    "1201",
    "-1",
    "-0",
    "+5",
    "007",
    "12.0",
    "12.5",
    "1e1",
    "1E2",
    "1e-1",
    ".5",
    "5.",
    " 12",
    "12 ",
    "\t12\n",
    "1_000",
    "1,000",
    "0x10",
    "\u0661\u0662",
    "\uff11",
    "NaN",
    "nan",
    "inf",
    "-Infinity",
    "1e999",
    "9" * 30,
    "",
    " ",
    "abc",
    "null",
    "true",
    "29.85",
    "10000",
    "10000.01",
    "10000000",
    "10000000.5",
]
_ID_TEXTS = [
    "7590-VHVEG",
    "x",
    " padded ",
    "\tTAB\t",
    "x" * 128,
    "x" * 129,
    " " * 3,
    "",
    "caf\u00e9-\u4e2d",
    "a:b:c",
    "a\x00b",
    "a\x1bb",
    "a\x7fb",
    "a\x85b",
    "\x85a",
    "a\x9bb",
    "a\u061cb",
    "a\u200eb",
    "a\u200fb",
    "a\u202ab",
    "a\u202eb",
    "a\u2066b",
    "a\u2069b",
    "\u3000id\u3000",
    "\ufeffid",
    "a\u2028b",
]
_FLAG_TEXTS = ["0", "1", "Yes", "No", "yes", "NO", "true", "False", " 1 ", "2", "maybe", "", "1.0", "0.5"]
_CATEGORY_TEXTS = ["Yes", "No", " Yes", "yes", "No internet service", "Fiber optic", "Two year", "F", ""]
_TIMES = [
    "2026-11-26T10:00:00Z",
    "2026-11-26T10:00:00",
    "2026-11-26T10:00:00.123+02:00",
    "2026-11-26",
    "2026-11-26 10:00:00Z",
    "2026-13-01T00:00:00Z",
    "yesterday",
    "2999-01-01T00:00:00Z",
    "",
]
_ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    3.5,
    1e300,
    -0.0,
    12.0,
    [],
    [1],
    {},
    {"a": 1},
    "",
    " ",
    "x" * 200,
]


def _telco(record: dict[str, Any]) -> dict[str, Any]:
    return {TELCO_ALIASES.get(name, name): value for name, value in record.items()}


def _as_text(value: Any) -> str:
    return "" if value is None else str(value)


def _csv_row(record: dict[str, Any]) -> dict[str, str]:
    """A record as a row of the telco CSV (text values, the Churn label, no id/time)."""
    row = {TELCO_ALIASES[name]: _as_text(record.get(name)) for name in ("customer_id", *FEATURES)}
    row["Churn"] = "No"
    return row


def corpus(n: int, seed: int = 19) -> list[Case]:
    """``n`` cases, about half valid in some shape, a quarter borderline, a quarter invalid."""
    rng = random.Random(seed)
    events = synthetic_events(n, seed=seed)
    cases = []
    for event in events:
        event["event_time"] = "2026-01-01T00:00:00+00:00"  # far from the clock rule's edge
        roll = rng.random()
        if roll < 0.5:
            cases.append(_valid(rng, event))
        elif roll < 0.75:
            cases.append(_borderline(rng, event))
        else:
            cases.append(_invalid(rng, event))
    return cases


def _valid(rng: random.Random, event: dict[str, Any]) -> Case:
    shape = rng.choice(
        ["canonical", "telco", "csv_row", "no_ids", "bom", "indented", "extra", "booleans", "cased"]
    )
    if shape == "csv_row":
        row = _csv_row(event)
        return Case("valid:csv_row", orjson.dumps(row), row)
    record = dict(event)
    if shape == "telco":
        record = _telco(record)
    elif shape == "no_ids":
        del record["event_id"], record["event_time"]
    elif shape == "extra":
        record["note"] = {"nested": [1, {"a": "b"}], "text": 'say "x": y'}
    elif shape == "cased":  # names in another case, as some exports write them
        record = {
            ("Tenure" if k == "tenure" else k.upper() if k == "gender" else k): v for k, v in record.items()
        }
    elif shape == "booleans":
        record["partner"] = record["partner"] == "Yes"
        record["senior_citizen"] = bool(record["senior_citizen"])
    value = orjson.dumps(record, option=orjson.OPT_INDENT_2 if shape == "indented" else None)
    if shape == "bom":
        value = b"\xef\xbb\xbf" + value
    return Case(f"valid:{shape}", value)


def _borderline(rng: random.Random, event: dict[str, Any]) -> Case:
    """One field set to text or an edge value: some accepted, some refused."""
    row = _csv_row(event)
    column, values = rng.choice(
        [
            ("tenure", _NUMBER_TEXTS),
            ("MonthlyCharges", _NUMBER_TEXTS),
            ("TotalCharges", _NUMBER_TEXTS),
            ("SeniorCitizen", _FLAG_TEXTS),
            ("customerID", _ID_TEXTS),
            (rng.choice(["Partner", "PhoneService", "Contract", "OnlineSecurity"]), _CATEGORY_TEXTS),
        ]
    )
    row[column] = rng.choice(values)
    if rng.random() < 0.3:  # the same change on a canonical, keyed, timed record
        record = dict(event)
        name = next((snake for snake, telco in TELCO_ALIASES.items() if telco == column), column)
        record[name] = row[column]
        if rng.random() < 0.5:
            record["event_id"] = rng.choice(_ID_TEXTS)
        if rng.random() < 0.3:
            record["event_time"] = rng.choice(_TIMES)
        return Case(f"borderline:canonical:{name}", orjson.dumps(record))
    return Case(f"borderline:csv_row:{column}", orjson.dumps(row), row)


def _invalid(rng: random.Random, event: dict[str, Any]) -> Case:
    good = orjson.dumps(event)
    kind = rng.choice(
        [
            "odd_value",
            "missing",
            "repeated",
            "nan",
            "truncated",
            "flipped",
            "not_object",
            "empty",
            "escaped_control",
            "deep",
            "oversize",
            "not_utf8",
            "lone_surrogate",
        ]
    )
    if kind == "odd_value":
        name = rng.choice([*FEATURES, "customer_id", "event_id", "event_time", "schema_version"])
        value = orjson.dumps(event | {name: rng.choice(_ODD_VALUES)})
    elif kind == "missing":
        record = dict(event)
        del record[rng.choice(["customer_id", "tenure", "contract", "gender", "monthly_charges"])]
        value = orjson.dumps(record)
    elif kind == "repeated":
        name = rng.choice(["tenure", "customer_id", "event_id", "total_charges"])
        value = good[:-1] + b',"' + name.encode() + b'":' + orjson.dumps(event[name]) + b"}"
    elif kind == "nan":
        value = good.replace(
            b'"monthly_charges":', b'"monthly_charges":' + rng.choice([b"NaN", b"-Infinity"]) + b',"x":'
        )
    elif kind == "truncated":
        value = good[: rng.randrange(1, len(good))]
    elif kind == "flipped":
        flipped = bytearray(good)
        flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        value = bytes(flipped)
    elif kind == "not_object":
        value = rng.choice([b"[]", b"42", b'"text"', b"null", b"true", b"[" + good + b"]"])
    elif kind == "empty":
        value = rng.choice([b"", b"   ", b"\n"])
    elif kind == "escaped_control":
        name = rng.choice(["customer_id", "event_id"])
        value = good.replace(f'"{name}":"'.encode(), f'"{name}":"\\u001b[2J'.encode(), 1)
    elif kind == "deep":
        value = good[:-1] + b',"deep":' + b"[" * 200 + b"]" * 200 + b"}"
    elif kind == "oversize":
        value = good[:-1] + b',"padding":"' + b"x" * 70_000 + b'"}'
    elif kind == "not_utf8":
        value = good.replace(b'"gender":"', b'"gender":"\xff', 1)
    else:  # lone_surrogate
        value = good.replace(b'"customer_id":"', b'"customer_id":"\\ud800', 1)
    return Case(f"invalid:{kind}", value)
