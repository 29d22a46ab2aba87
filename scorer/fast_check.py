"""Decode and validate a whole batch of well-formed events in C: the scorer's fast path.

Decoding an event with orjson and validating it with
:class:`schemas.events.CustomerEvent` costs several microseconds, more than
everything else the scorer does with it. Nearly every record on the topic is
well formed: the snake_case keys the producer writes, or the telco column names
a CSV export has, and no other keys; vocabulary strings spelled exactly;
numbers as JSON numbers or as the plain text a CSV export writes (``"29.85"``);
ids and ``event_time`` present or absent; no escape sequences.
:func:`read_batch` decodes those shapes straight into a typed msgspec struct —
one struct per naming (msgspec gives a field one name; namings in another case,
``Tenure``, are learned from the records, a few at most), the one that matched
the previous batch tried first — whose decoder checks types, vocabularies and
ranges as it parses and reads numbers written as text (``strict=False``: JSON
number syntax inside the string, nothing else). It then checks what the struct
cannot say (whitespace around ids, forbidden characters in ids, repeated keys,
the ``event_time`` form) a whole batch at a time. Rows it cannot vouch for are
named; they go through the input contract (:func:`schemas.contract.read_event`)
one by one, which accepts the other lenient forms (booleans, padded text,
``"Yes"`` flags, a byte-order mark, extra fields) or explains why a record is refused.

So the rule for changing this module: it may accept only what the slow path
accepts, with the same values; when in doubt, send the row to the contract.
``tests/unit/test_fast_check.py`` checks that on hand-picked and random records.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Annotated, Any, Final, Literal

import msgspec
import orjson

from schemas.events import FORBIDDEN_ID_CHARACTERS, ID_MAX_LENGTH
from schemas.features import CATEGORIES, FOLDED_NAMES, NUMERIC_RANGES, SCHEMA_VERSION, TELCO_ALIASES

#: ``YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM]``, a form that ``datetime.fromisoformat`` and
#: pydantic read the same way; other ISO 8601 spellings go to the model.
_TIME_FORM: Final = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)?"
_EVENT_TIME: Final = re.compile(_TIME_FORM)
#: A whole column of event times joined by newlines (the form cannot contain one).
_EVENT_TIMES: Final = re.compile(f"{_TIME_FORM}(?:\n{_TIME_FORM})*")

_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=ID_MAX_LENGTH)]  # CustomerEvent's id lengths


def _bounded(kind: type, name: str) -> Any:
    low, high = NUMERIC_RANGES[name]
    return Annotated[kind, msgspec.Meta(ge=low, le=high)]


#: Every field of a well-formed event. Each is typed at least as strictly as in CustomerEvent:
#: exact vocabulary strings; numbers as JSON numbers or as text holding a JSON number (the
#: decoders run with ``strict=False``, which reads ``"12"``, ``"29.85"``, ``"1e2"``, ``"1.0"`` as
#: the contract does and refuses padding, signs, separators and words). ``UNSET`` marks an
#: optional field the record does not have (for the repeated-key check and the defaults).
#: ``churn`` is the label column of a telco CSV: the model ignores it, so may the scorer.
_FIELDS: Final[list[tuple[Any, ...]]] = [
    ("customer_id", _Id),
    *((name, Literal[levels]) for name, levels in CATEGORIES.items()),
    ("senior_citizen", Annotated[int, msgspec.Meta(ge=0, le=1)]),
    ("tenure", _bounded(int, "tenure")),
    ("monthly_charges", _bounded(float, "monthly_charges")),
    ("event_id", _Id | msgspec.UnsetType, msgspec.UNSET),
    ("event_time", str | msgspec.UnsetType, msgspec.UNSET),  # its form is checked below
    # With strict=False msgspec also reads the text "null" as null: _check_null_text sends it on.
    ("total_charges", _bounded(float, "total_charges") | None | msgspec.UnsetType, msgspec.UNSET),
    (
        "schema_version",
        Annotated[int, msgspec.Meta(ge=1, le=SCHEMA_VERSION)] | msgspec.UnsetType,
        msgspec.UNSET,
    ),
    ("churn", Literal["No", "Yes"] | msgspec.UnsetType, msgspec.UNSET),
]
#: snake_case keys, as the producer writes them.
CanonicalEvent: Final[Any] = msgspec.defstruct("CanonicalEvent", _FIELDS, forbid_unknown_fields=True)
#: The telco CSV's column names (``customerID``, ``MonthlyCharges``, ...), as a CSV export has them.
TelcoEvent: Final[Any] = msgspec.defstruct(
    "TelcoEvent", _FIELDS, forbid_unknown_fields=True, rename=dict(TELCO_ALIASES)
)
_FIELD_NAMES: Final = tuple(field[0] for field in _FIELDS)
#: At most this many namings are learned (see :class:`_Namings`), so odd records cannot grow it.
MAX_LEARNED_NAMINGS: Final = 6

#: The optional fields (last in the structs); every other field is present in every event.
_OPTIONALS: Final = ("event_id", "event_time", "total_charges", "schema_version", "churn")
_REQUIRED: Final = len(_FIELDS) - len(_OPTIONALS)
#: The string fields whose text may hold colons (the vocabularies and numbers hold none).
_FREE_TEXT: Final = ("customer_id", "event_id", "event_time")
_TZINFO: Final = attrgetter("tzinfo")
_OPTIONAL: Final = attrgetter(*_OPTIONALS)
_UNSET: Final = msgspec.UNSET


class _Namings:
    """A decoder per naming of the fields: snake_case, the telco names, and a few learned ones.

    msgspec gives a field one name. Exports differ in case (``Tenure`` for ``tenure``), which
    the contract reads when a field has no exactly named value: a record whose keys each name a
    different field in another case teaches a naming (a struct renamed to exactly those keys),
    at most :data:`MAX_LEARNED_NAMINGS` of them. ``preferred`` is the naming that read the last
    whole batch, tried first.
    """

    def __init__(self) -> None:
        self.names: list[dict[str, str]] = [
            {name: name for name in _FIELD_NAMES},
            {name: TELCO_ALIASES.get(name, name) for name in _FIELD_NAMES},
        ]
        self.decoders: list[Callable[[bytes], Any]] = [
            msgspec.json.Decoder(CanonicalEvent, strict=False).decode,
            msgspec.json.Decoder(TelcoEvent, strict=False).decode,
        ]
        self.preferred = 0

    def in_order(self) -> list[int]:
        """Indexes of the decoders, the preferred one first."""
        return [self.preferred, *(i for i in range(len(self.decoders)) if i != self.preferred)]

    def learn(self, value: bytes) -> Callable[[bytes], Any] | None:
        """A decoder for the naming of ``value``'s keys, if it is a new naming of the fields."""
        if len(self.decoders) >= 2 + MAX_LEARNED_NAMINGS:
            return None
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(obj, dict):
            return None
        given: dict[str, str] = {}
        for key in obj:
            field = FOLDED_NAMES.get(key.casefold())  # names only the fields of the structs
            if field is None or field in given:
                return None  # an unknown field, or one field named twice: the contract's to read
            given[field] = key
        if any(all(names[f] == key for f, key in given.items()) for names in self.names):
            return None  # a known naming: the record is odd in some other way
        names = {name: given.get(name, name) for name in _FIELD_NAMES}
        struct = msgspec.defstruct(
            f"LearnedEvent{len(self.names)}", _FIELDS, forbid_unknown_fields=True, rename=names
        )
        decode = msgspec.json.Decoder(struct, strict=False).decode
        self.names.append(names)
        self.decoders.append(decode)
        return decode


_NAMINGS: Final = _Namings()


@dataclass
class FastBatch:
    """What the fast path made of a batch of raw values, row by row."""

    #: The decoded event per row, or None where the row is left to the contract.
    events: list[Any]
    #: Parsed, timezone-aware ``event_time`` per row (None where ``events`` is None or has no time).
    event_times: list[datetime | None]

    @property
    def slow(self) -> list[int]:
        """Rows to validate with the contract, ascending."""
        return [row for row, event in enumerate(self.events) if event is None]


def read_batch(values: Sequence[bytes]) -> FastBatch:
    """Decode every value of a well-formed shape; name the rows that are not."""
    events = _decode_all(values)
    _check_escapes(values, events)
    _check_null_text(values, events)
    _check_identifiers(events)
    _check_repeated_keys(values, events)
    return FastBatch(events=events, event_times=_parse_times(events))


def _decode_all(values: Sequence[bytes]) -> list[Any]:
    """Decode the batch with one decoder if it can (the previous batch's first), else row by row."""
    namings = _NAMINGS
    order = namings.in_order()
    for index in order:
        try:
            events = list(map(namings.decoders[index], values))
        except ValueError:  # some row is not of this naming (or not an event): try the next
            continue
        namings.preferred = index
        return events
    decoders = [namings.decoders[index] for index in order]
    return [_decode_or_none(decoders, value) for value in values]


def _decode_or_none(decoders: list[Callable[[bytes], Any]], value: bytes) -> Any:
    for decode in decoders:
        try:
            return decode(value)
        except ValueError:
            continue
    learned = _NAMINGS.learn(value)
    if learned is None:
        return None
    decoders.append(learned)  # the batch's other rows of this naming
    try:
        return learned(value)
    except ValueError:
        return None


def _present(events: list[Any]) -> tuple[Sequence[int], list[Any]]:
    """The rows still on the fast path, and their events."""
    if None not in events:
        return range(len(events)), list(events)  # a copy: the checks set rows of ``events`` to None
    rows = [row for row, event in enumerate(events) if event is not None]
    return rows, [events[row] for row in rows]


def _check_escapes(values: Sequence[bytes], events: list[Any]) -> None:
    """Rows with a backslash go to the contract: with no escapes, each string is its text as written."""
    if b"\\" not in b"".join(values):
        return
    for row, value in enumerate(values):
        if b"\\" in value:
            events[row] = None


def _check_null_text(values: Sequence[bytes], events: list[Any]) -> None:
    """A null ``total_charges`` that may have been the text "null" goes to the contract (which refuses it).

    msgspec's ``strict=False`` reads ``"null"`` like ``null``; the contract reads only a JSON null
    (or blank text) as missing. Missing charges are rare (brand-new customers), so any row holding
    the text goes.
    """
    rows, present = _present(events)
    column = list(map(attrgetter("total_charges"), present))
    if None not in column:
        return
    for row, value in zip(rows, column, strict=True):
        if value is None and b'"null"' in values[row].lower():
            events[row] = None


def _identifier_ok(value: Any) -> bool:
    """Unpadded (the model trims whitespace, so a padded id reads differently), no forbidden character."""
    if value is _UNSET:
        return True
    return bool(value == value.strip()) and FORBIDDEN_ID_CHARACTERS.search(value) is None


def _check_identifiers(events: list[Any]) -> None:
    rows, present = _present(events)
    for name in ("customer_id", "event_id"):
        column = list(map(attrgetter(name), present))
        texts = [value for value in column if value is not _UNSET] if _UNSET in column else column
        joined = "".join(texts)
        if list(map(str.strip, texts)) == texts and FORBIDDEN_ID_CHARACTERS.search(joined) is None:
            continue
        for row, value in zip(rows, column, strict=True):
            if not _identifier_ok(value):
                events[row] = None


def _expected_colons(event: Any) -> int:
    optional = sum(value is not _UNSET for value in _OPTIONAL(event))
    text: int = sum(
        value.count(":") for value in map(event.__getattribute__, _FREE_TEXT) if value is not _UNSET
    )
    return _REQUIRED + optional + text


def _check_repeated_keys(values: Sequence[bytes], events: list[Any]) -> None:
    """Rows that repeat a key go to the contract (the decoder keeps the last value silently).

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
    optional = sum(len(rows) - list(map(attrgetter(name), present)).count(_UNSET) for name in _OPTIONALS)
    strings = 0
    for name in _FREE_TEXT:
        column = list(map(attrgetter(name), present))
        if _UNSET in column:
            column = [value for value in column if value is not _UNSET]
        strings += "".join(column).count(":")
    if text == _REQUIRED * len(rows) + optional + strings:
        return
    for row in rows:
        if values[row].count(b":") != _expected_colons(events[row]):
            events[row] = None


def _parse_times(events: list[Any]) -> list[datetime | None]:
    """Parse every ``event_time`` at once when all are in the plain form, else row by row.

    An event without ``event_time`` keeps None (the caller fills it from the record).
    """
    rows, present = _present(events)
    column: list[Any] = list(map(attrgetter("event_time"), present))
    times: list[datetime | None] = [None] * len(events)
    if _UNSET in column:
        timed = [k for k, value in enumerate(column) if value is not _UNSET]
        rows = [rows[k] for k in timed]
        column = [column[k] for k in timed]
    joined = "\n".join(column)
    if column and joined.count("\n") == len(column) - 1 and _EVENT_TIMES.fullmatch(joined):
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
    """One list per field in :data:`COLUMNS`, from decoded structs or ``CustomerEvent`` models.

    An absent ``event_id`` or ``total_charges`` is None, as in the model.
    """
    if not events:
        return {name: [] for name in COLUMNS}
    columns = dict(zip(COLUMNS, map(list, zip(*map(_ROW, events), strict=True)), strict=True))
    for name in ("event_id", "total_charges"):
        column = columns[name]
        if _UNSET in column:
            columns[name] = [None if value is _UNSET else value for value in column]
    return columns
