"""The input contract: raw bytes, or a parsed row, become a :class:`CustomerEvent` or a :class:`Rejection`.

One decision for every entry point: the stream scorer's slow path
(``scorer.batch``; its fast path accepts a subset, with the same values), the
REST API (``/predict``, ``/predict/batch``) and ``churn predict`` (CSV rows) all
call :func:`read_event` or :func:`validate_event`, so the same body is accepted
or refused everywhere, with the same error type and field.

- :func:`read_event` takes a record's bytes: empty, oversize, nested too deep, not
  UTF-8, not JSON (``NaN``/``Infinity`` included), not an object, a repeated
  top-level key — each is refused with its own type. A UTF-8 byte-order mark before the JSON (or at the
  start of the first key, as ``csv.DictReader`` leaves it on a file read without
  ``utf-8-sig``) is ignored.
- :func:`validate_event` takes the parsed object (or a CSV row) and applies the
  model (:mod:`schemas.events`) and the schema version.
- :func:`future_rejection` words the one rule that needs a clock: an ``event_time``
  too far ahead of the reader's.

``event_id`` and ``event_time`` stay ``None`` when the sender left them out; the
caller fills them (:func:`derived_event_id` for the stream).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson
from pydantic import ValidationError

from schemas import dead_letters
from schemas.events import CustomerEvent
from schemas.features import FOLDED_NAMES, SCHEMA_VERSION, TELCO_ALIASES
from schemas.nesting import MAX_NESTING_DEPTH, too_deep

BOM: Final = b"\xef\xbb\xbf"
_BOM_TEXT: Final = "\ufeff"
#: Field errors listed in a message; more are counted.
_LISTED: Final = 5

# A key is a JSON string followed by a colon; counts keys at every level (and, rarely,
# such patterns inside string values) — an upper bound used to skip the exact check.
_KEY_PATTERN: Final = re.compile(rb'"\s*:')
_NON_FINITE_TOKENS: Final = (b"NaN", b"Infinity", b"-Infinity")
_LAST_KEY: Final = re.compile(rb'"([^"\\]{1,64})"\s*:[^:]*$')
_VALUE_ERROR_PREFIX: Final = re.compile(r"^Value error, ")
#: The names the model reads as they are.
_EXACT_NAMES: Final = frozenset(
    {*TELCO_ALIASES, *TELCO_ALIASES.values(), "event_id", "event_time", "schema_version"}
)


@dataclass(frozen=True, slots=True)
class FieldError:
    """One reason a record is refused: the field (snake_case, "" for the whole record), why, and the type."""

    field: str
    reason: str
    type: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record is refused: its field errors, first one first, and the dead-letter message.

    ``message`` may quote (shortened) input values: it goes into the dead-letter
    headers, next to the original bytes. ``errors`` never does: the API answers with it.
    """

    errors: tuple[FieldError, ...]
    message: str

    @property
    def error_type(self) -> str:
        return self.errors[0].type

    @property
    def field(self) -> str:
        return self.errors[0].field


def refused(error_type: str, reason: str, field: str = "") -> Rejection:
    """A rejection with one error; the message is ``field: reason`` (or the reason alone)."""
    message = f"{field}: {reason}" if field else reason
    return Rejection((FieldError(field, reason, error_type),), dead_letters.clip(message))


def read_event(value: bytes | None, max_bytes: int) -> CustomerEvent | Rejection:
    """The event in a record's value, or why there is none."""
    parsed = parse_object(value, max_bytes)
    if isinstance(parsed, Rejection):
        return parsed
    return validate_event(parsed)


def parse_object(value: bytes | None, max_bytes: int) -> dict[str, Any] | Rejection:
    """The record's value as a JSON object, or the reason it is not one."""
    if not value or value.isspace():
        return refused(dead_letters.EMPTY_VALUE, "record value is empty")
    if len(value) > max_bytes:
        return refused(dead_letters.OVERSIZE, f"record value is {len(value)} bytes; the limit is {max_bytes}")
    if value.startswith(BOM):
        value = value[len(BOM) :]
    if too_deep(value):
        # Before any parser sees it: the repeated-key check parses with the recursive standard
        # json module, which a thousand levels of nesting would overflow.
        reason = f"JSON nests deeper than {MAX_NESTING_DEPTH} levels of arrays and objects"
        return refused(dead_letters.TOO_DEEP, reason)
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return _json_error(value, exc)
    if not isinstance(obj, dict):
        kind = "array" if isinstance(obj, list) else type(obj).__name__
        return refused(dead_letters.NOT_AN_OBJECT, f"record is a JSON {kind}, not an object")
    return _without_repeats(value, obj)


def validate_event(obj: Mapping[str, Any]) -> CustomerEvent | Rejection:
    """The model's verdict on a parsed record (a JSON object, or a CSV row of text values)."""
    if obj and next(iter(obj)).startswith(_BOM_TEXT):
        unmarked = _first_key_without_bom(obj)
        if isinstance(unmarked, Rejection):
            return unmarked
        obj = unmarked
    if not _EXACT_NAMES.issuperset(obj):
        named = _names_ignoring_case(obj)
        if isinstance(named, Rejection):
            return named
        obj = named
    try:
        event = CustomerEvent.model_validate(obj)
    except ValidationError as exc:
        return rejection_of(exc.errors(include_url=False))  # type: ignore[arg-type]
    if event.schema_version > SCHEMA_VERSION:
        return refused(
            dead_letters.UNSUPPORTED_SCHEMA_VERSION,
            f"{event.schema_version} is newer than this reader's {SCHEMA_VERSION}",
            "schema_version",
        )
    return event


def rejection_of(errors: Sequence[dict[str, Any]]) -> Rejection:
    """The rejection for a pydantic ``ValidationError.errors()`` list.

    The type comes from the first error; the message lists every failing field
    with its reason and (shortened) input, e.g.
    ``tenure: Input should be less than or equal to 1200 (got 5000)``.
    """
    found: list[FieldError] = []
    parts: list[str] = []
    for error in errors:
        field = dead_letters.field_name(error["loc"])
        if error.get("type") == "missing":
            reason = "required field is missing"
            quoted = f"{field}: {reason}"
        else:
            reason = _VALUE_ERROR_PREFIX.sub("", str(error["msg"]))
            quoted = f"{field}: {reason} (got {dead_letters.short(error.get('input'))})"
        found.append(FieldError(field, reason, dead_letters.error_type_of(dict(error))))
        if len(parts) < _LISTED:
            parts.append(quoted)
    if len(errors) > _LISTED:
        parts.append(f"(+{len(errors) - _LISTED} more)")
    return Rejection(tuple(found), dead_letters.clip("; ".join(parts)))


def future_rejection(event_time: datetime, skew_s: float) -> Rejection:
    """An ``event_time`` more than ``skew_s`` ahead of the reader's clock is refused."""
    return refused(
        dead_letters.EVENT_FROM_FUTURE,
        f"{event_time.isoformat()} is more than {skew_s:g} s ahead of the scorer clock",
        "event_time",
    )


def derived_event_id(topic: str, partition: int, offset: int) -> str:
    """The ``event_id`` of a record that has none: where it is, so a re-read keeps its id."""
    return f"{topic}:{partition}:{offset}"


def json_rejection(value: bytes) -> Rejection | None:
    """Why ``value`` is not one JSON document, in the words of :func:`parse_object`; None if it is one."""
    try:
        orjson.loads(value.removeprefix(BOM))
    except orjson.JSONDecodeError as exc:
        return _json_error(value.removeprefix(BOM), exc)
    return None


def _names_ignoring_case(obj: Mapping[str, Any]) -> dict[str, Any] | Rejection:
    """``obj`` with keys that name a field in another case (``Tenure``) under the field's name.

    A field given under its exact name (snake_case or telco) keeps that value; a field given in
    two other cases is ambiguous, as a repeated key is. Keys that name no field stay as they are.
    """
    present = {FOLDED_NAMES[key.casefold()] for key in obj if key in _EXACT_NAMES}
    renamed: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for key, value in obj.items():
        field = None if key in _EXACT_NAMES else FOLDED_NAMES.get(key.casefold())
        if field is None or field in present:
            renamed[key] = value
            continue
        if field in seen:
            return refused(dead_letters.DUPLICATE_KEYS, f"given as {seen[field]!r} and {key!r}", field)
        seen[field] = key
        renamed[field] = value
    return renamed


def _first_key_without_bom(obj: Mapping[str, Any]) -> dict[str, Any] | Rejection:
    items = iter(obj.items())
    first, value = next(items)
    key = first.removeprefix(_BOM_TEXT)
    if key in obj:
        return refused(dead_letters.DUPLICATE_KEYS, "key appears more than once", key)
    return {key: value, **dict(items)}


def _json_error(value: bytes, exc: orjson.JSONDecodeError) -> Rejection:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as bad:
        field = _key_before(value, bad.start)
        reason = f"value is not UTF-8: invalid byte at position {bad.start}"
        return refused(dead_letters.NOT_UTF8, reason, field)
    position = exc.pos
    at = len(text[:position].encode())  # orjson reports characters; the regex works on bytes
    if "infinity" in exc.msg or any(value.startswith(t, at) for t in _NON_FINITE_TOKENS):
        field = _key_before(value, at + 1)
        return refused(dead_letters.NOT_FINITE, "NaN or Infinity is not a finite number", field)
    reason = f"not valid JSON: {exc.msg} (character {position})"
    return refused(dead_letters.INVALID_JSON, reason)


def _key_before(value: bytes, position: int) -> str:
    """The JSON key just before ``position``, to say where a byte-level error is ("" if none)."""
    match = _LAST_KEY.search(value, max(0, position - 256), position)
    return match.group(1).decode("utf-8", "replace") if match else ""


def _without_repeats(value: bytes, obj: dict[str, Any]) -> dict[str, Any] | Rejection:
    """``obj``, or a rejection naming its first repeated top-level key; cheap unless the text looks odd.

    orjson keeps the last of duplicate keys silently. Every key in the text is
    followed by a colon, so if the text has exactly as many colons as the
    object has keys (plus those inside the event_time string), nothing repeats.
    """
    expected = len(obj)
    event_time = obj.get("event_time")
    if isinstance(event_time, str):
        expected += event_time.count(":")
    if value.count(b":") == expected or len(_KEY_PATTERN.findall(value)) == len(obj):
        return obj
    # object_pairs_hook runs for every object, innermost first: the last call is the top level.
    top_level_repeats: list[str] = []

    def hook(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        top_level_repeats.clear()
        for key, _ in items:
            if key in seen:
                top_level_repeats.append(key)
            seen.add(key)
        return dict(items)

    try:
        json.loads(value, object_pairs_hook=hook)
    except (RecursionError, ValueError) as exc:  # orjson read it; the standard parser may not
        return refused(dead_letters.INVALID_JSON, f"not valid JSON: {type(exc).__name__}")
    if top_level_repeats:
        return refused(dead_letters.DUPLICATE_KEYS, "key appears more than once", top_level_repeats[0])
    return obj
