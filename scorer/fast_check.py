"""Decode and validate a whole batch of canonical events in C: the scorer's fast path.

Decoding an event with orjson and validating it with
:class:`schemas.events.CustomerEvent` costs several microseconds, more than
everything else the scorer does with it. Nearly every record on the topic is in
the canonical form the producer writes: snake_case keys and no others,
vocabulary strings spelled exactly, integer flags and counts, numbers in range,
an ISO 8601 ``event_time``, no escape sequences. :func:`read_batch` decodes
that form straight into a typed msgspec struct, whose decoder checks types,
vocabularies and ranges as it parses, then checks what the struct cannot say
(whitespace around ids, repeated keys, the ``event_time`` form) a whole batch
at a time. Rows it cannot vouch for are named; they go through orjson and the
pydantic model one by one, which accepts the lenient forms (telco aliases,
booleans, numbers as text, padding) or explains why a record is refused.

So the rule for changing this module: it may accept only what the slow path
(orjson, then ``CustomerEvent``) accepts, with the same values; when in doubt,
send the row to the model. ``tests/unit/test_fast_check.py`` checks that on
hand-picked and random records.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Annotated, Any, Final, Literal

import msgspec

from schemas.features import CATEGORIES, NUMERIC_RANGES, SCHEMA_VERSION

#: ``YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM]``, a form that ``datetime.fromisoformat`` and
#: pydantic read the same way; other ISO 8601 spellings go to the model.
_TIME_FORM: Final = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)?"
_EVENT_TIME: Final = re.compile(_TIME_FORM)
#: A whole column of event times joined by newlines (the form cannot contain one).
_EVENT_TIMES: Final = re.compile(f"{_TIME_FORM}(?:\n{_TIME_FORM})*")

_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]  # CustomerEvent's id lengths


def _bounded(kind: type, name: str) -> Any:
    low, high = NUMERIC_RANGES[name]
    return Annotated[kind, msgspec.Meta(ge=low, le=high)]


#: The canonical event. Every field here is typed at least as strictly as in CustomerEvent:
#: exact vocabulary strings, int for int (never bool, float or text), int or float for float.
#: ``UNSET`` marks an optional field that the record does not have (for the repeated-key check).
CanonicalEvent: Final[Any] = msgspec.defstruct(
    "CanonicalEvent",
    [
        ("customer_id", _Id),
        ("event_id", _Id),
        ("event_time", str),  # its form is checked below, a batch at a time
        *((name, Literal[levels]) for name, levels in CATEGORIES.items()),
        ("senior_citizen", Annotated[int, msgspec.Meta(ge=0, le=1)]),
        ("tenure", _bounded(int, "tenure")),
        ("monthly_charges", _bounded(float, "monthly_charges")),
        ("total_charges", _bounded(float, "total_charges") | None | msgspec.UnsetType, msgspec.UNSET),
        (
            "schema_version",
            Annotated[int, msgspec.Meta(ge=1, le=SCHEMA_VERSION)] | msgspec.UnsetType,
            msgspec.UNSET,
        ),
    ],
    forbid_unknown_fields=True,  # so every key in the text is one of these fields
)
_decode = msgspec.json.Decoder(CanonicalEvent).decode

#: Fields every canonical record has; the last two are optional.
_REQUIRED: Final = len(CanonicalEvent.__struct_fields__) - 2
#: The string fields whose text may hold colons (the vocabularies hold none).
_FREE_TEXT: Final = ("customer_id", "event_id", "event_time")
_OPTIONALS: Final = ("total_charges", "schema_version")
_TZINFO: Final = attrgetter("tzinfo")
_OPTIONAL: Final = attrgetter(*_OPTIONALS)


@dataclass
class FastBatch:
    """What the fast path made of a batch of raw values, row by row."""

    #: The decoded event per row, or None where the row is left to the model.
    events: list[Any]
    #: Parsed, timezone-aware ``event_time`` per row (None where ``events`` is None).
    event_times: list[datetime | None]

    @property
    def slow(self) -> list[int]:
        """Rows to validate with the pydantic model, ascending."""
        return [row for row, event in enumerate(self.events) if event is None]


def read_batch(values: Sequence[bytes]) -> FastBatch:
    """Decode every value in the canonical form; name the rows that are not in it."""
    try:
        events: list[Any] = list(map(_decode, values))
    except ValueError:  # some row is not canonical (or not JSON): decode row by row
        events = [_decode_or_none(value) for value in values]
    _check_escapes(values, events)
    _check_identifiers(events)
    _check_repeated_keys(values, events)
    return FastBatch(events=events, event_times=_parse_times(events))


def _decode_or_none(value: bytes) -> Any:
    try:
        return _decode(value)
    except ValueError:
        return None


def _present(events: list[Any]) -> tuple[Sequence[int], list[Any]]:
    """The rows still on the fast path, and their events."""
    if None not in events:
        return range(len(events)), list(events)  # a copy: the checks set rows of ``events`` to None
    rows = [row for row, event in enumerate(events) if event is not None]
    return rows, [events[row] for row in rows]


def _check_escapes(values: Sequence[bytes], events: list[Any]) -> None:
    """Rows with a backslash go to the model: with no escapes, each string is its text as written."""
    if b"\\" not in b"".join(values):
        return
    for row, value in enumerate(values):
        if b"\\" in value:
            events[row] = None


def _identifier_ok(value: str) -> bool:
    return value == value.strip()  # the model strips whitespace; a padded id reads differently


def _check_identifiers(events: list[Any]) -> None:
    rows, present = _present(events)
    for name in ("customer_id", "event_id"):
        column = list(map(attrgetter(name), present))
        if list(map(str.strip, column)) == column:
            continue
        for row, value in zip(rows, column, strict=True):
            if not _identifier_ok(value):
                events[row] = None


def _expected_colons(event: Any) -> int:
    optional = sum(value is not msgspec.UNSET for value in _OPTIONAL(event))
    text: int = sum(getattr(event, name).count(":") for name in _FREE_TEXT)
    return _REQUIRED + optional + text


def _check_repeated_keys(values: Sequence[bytes], events: list[Any]) -> None:
    """Rows that repeat a key go to the model (the decoder keeps the last value silently).

    Every key in the text is a field name followed by a colon, and the only
    other colons are inside the free-text strings, which hold exactly what the
    text shows (no escapes). So a row's text has as many colons as it has keys
    plus those in its strings, and more if a key repeats. A row never has
    fewer, so one comparison of the totals covers the whole batch.
    """
    rows, present = _present(events)
    if not rows:
        return
    text = b"".join([values[row] for row in rows]).count(b":")
    optional = sum(
        len(rows) - list(map(attrgetter(name), present)).count(msgspec.UNSET) for name in _OPTIONALS
    )
    strings = sum("".join(map(attrgetter(name), present)).count(":") for name in _FREE_TEXT)
    if text == _REQUIRED * len(rows) + optional + strings:
        return
    for row in rows:
        if values[row].count(b":") != _expected_colons(events[row]):
            events[row] = None


def _parse_times(events: list[Any]) -> list[datetime | None]:
    """Parse every ``event_time`` at once when all are in the plain form, else row by row."""
    rows, present = _present(events)
    column: list[str] = list(map(attrgetter("event_time"), present))
    times: list[datetime | None] = [None] * len(events)
    joined = "\n".join(column)
    if joined.count("\n") == len(column) - 1 and _EVENT_TIMES.fullmatch(joined):
        try:
            parsed = list(map(datetime.fromisoformat, column))
        except ValueError:  # e.g. month 13
            parsed = []
        if parsed:
            if None in map(_TZINFO, parsed):  # naive times are UTC, as in the model
                parsed = [when if when.tzinfo is not None else when.replace(tzinfo=UTC) for when in parsed]
            if len(parsed) == len(events):
                return parsed  # type: ignore[return-value]
            for row, when in zip(rows, parsed, strict=True):
                times[row] = when
            return times
    for row, value in zip(rows, column, strict=True):
        times[row] = _parse_time(value)
        if times[row] is None:
            events[row] = None
    return times


def _parse_time(value: str) -> datetime | None:
    if _EVENT_TIME.fullmatch(value) is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:  # e.g. month 13: the model words the error
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


#: The fields the scorer reads from an event, decoded or modelled alike.
COLUMNS: Final = (
    "customer_id",
    "event_id",
    *CATEGORIES,
    "senior_citizen",
    "tenure",
    "monthly_charges",
    "total_charges",
)
_ROW: Final = attrgetter(*COLUMNS)


def columns_of(events: Sequence[Any]) -> dict[str, list[Any]]:
    """One list per field in :data:`COLUMNS`, from canonical structs or ``CustomerEvent`` models."""
    if not events:
        return {name: [] for name in COLUMNS}
    columns = dict(zip(COLUMNS, map(list, zip(*map(_ROW, events), strict=True)), strict=True))
    total = columns["total_charges"]
    if msgspec.UNSET in total:
        columns["total_charges"] = [None if value is msgspec.UNSET else value for value in total]
    return columns
