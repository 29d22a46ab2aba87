"""Validate a whole batch of decoded events column by column: the scorer's fast path.

Validating each record with :class:`schemas.events.CustomerEvent` costs about
4 µs, more than everything else the scorer does with it. Nearly every record
on the topic is in the canonical form the producer writes: snake_case keys,
vocabulary strings spelled exactly, integer flags and counts, numbers in
range, an ISO 8601 ``event_time``. :func:`check_batch` checks that form for a
whole batch at once — one column per field, each checked with a few C-level
passes (``set``, ``min``/``max``, ``map``) — and names the rows that are not
in it. Those rows go through the pydantic model one by one, which accepts the
lenient forms (telco aliases, booleans, numbers as text, padding) or explains
why a record is refused.

So the rule for changing this module: it may accept only what
``CustomerEvent`` accepts, with the same values; when in doubt, send the row
to the model. ``tests/unit/test_fast_check.py`` checks that on hand-picked and
random records.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from schemas.features import CATEGORIES, NUMERIC_RANGES, SCHEMA_VERSION

#: ``YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM]``, a form that ``datetime.fromisoformat`` and
#: pydantic read the same way; other ISO 8601 spellings go to the model.
_EVENT_TIME: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)?"
)
_MAX_ID: Final = 128  # CustomerEvent's max_length of customer_id and event_id
_INT: Final[frozenset[type]] = frozenset({int})
_NUMBER: Final[frozenset[type]] = frozenset({int, float})
_NUMBER_OR_NONE: Final[frozenset[type]] = frozenset({int, float, type(None)})

#: Every field the model reads, with what its column holds for a record that lacks it.
FIELDS: Final[dict[str, Any]] = {
    "customer_id": None,
    "event_id": None,
    "event_time": None,
    **{name: None for name in CATEGORIES},
    "senior_citizen": None,
    "tenure": None,
    "monthly_charges": None,
    "total_charges": None,
    "schema_version": SCHEMA_VERSION,
}


@dataclass
class BatchCheck:
    """Columns of a batch of decoded events and which rows the fast path could not vouch for."""

    #: field -> one value per row (the decoded JSON value, or the default when absent).
    columns: dict[str, list[Any]]
    #: Parsed ``event_time`` per row (None for rows in ``slow``).
    event_times: list[datetime | None]
    #: Rows to validate with the pydantic model, ascending.
    slow: list[int]


def columns_of(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """One list per field; a field a row lacks gets that field's default."""
    return {name: [row.get(name, default) for row in rows] for name, default in FIELDS.items()}


def check_batch(rows: Sequence[dict[str, Any]]) -> BatchCheck:
    """Check every field of every row; rows in the canonical form pass, the others are named."""
    columns = columns_of(rows)
    bad: set[int] = set()
    for name, levels in CATEGORIES.items():
        _check_levels(columns[name], bad, frozenset(levels))
    for name in ("customer_id", "event_id"):
        _check_identifiers(columns[name], bad)
    _check_numbers(columns["senior_citizen"], bad, _INT, 0, 1)
    low, high = NUMERIC_RANGES["tenure"]
    _check_numbers(columns["tenure"], bad, _INT, low, high)
    low, high = NUMERIC_RANGES["monthly_charges"]
    _check_numbers(columns["monthly_charges"], bad, _NUMBER, low, high)
    low, high = NUMERIC_RANGES["total_charges"]
    _check_numbers(columns["total_charges"], bad, _NUMBER_OR_NONE, low, high)
    _check_numbers(columns["schema_version"], bad, _INT, 1, SCHEMA_VERSION)
    event_times = _parse_times(columns["event_time"], bad)
    return BatchCheck(columns=columns, event_times=event_times, slow=sorted(bad))


def _check_levels(column: list[Any], bad: set[int], levels: frozenset[str]) -> None:
    """Rows whose value is not one of ``levels`` exactly are added to ``bad``."""
    try:
        if levels.issuperset(column):  # only equal strings are members: no bool, number or None
            return
    except TypeError:  # an unhashable value (a list or an object): look row by row
        pass
    bad.update(i for i, value in enumerate(column) if type(value) is not str or value not in levels)


def _types(column: list[Any]) -> set[type]:
    return set(map(type, column))


def _identifier(value: Any) -> bool:
    """A string that pydantic's whitespace stripping leaves as it is, 1..128 characters."""
    return type(value) is str and 0 < len(value) <= _MAX_ID and value == value.strip()


def _check_identifiers(column: list[Any], bad: set[int]) -> None:
    if (
        _types(column) == {str}
        and min(map(len, column)) > 0
        and max(map(len, column)) <= _MAX_ID
        and list(map(str.strip, column)) == column
    ):
        return
    bad.update(i for i, value in enumerate(column) if not _identifier(value))


def _check_numbers(column: list[Any], bad: set[int], kinds: frozenset[type], low: float, high: float) -> None:
    """Values of exactly these types (so no booleans) within [low, high]; None passes if allowed."""
    present = [v for v in column if v is not None] if type(None) in kinds else column
    if kinds.issuperset(_types(column)) and (not present or (low <= min(present) and max(present) <= high)):
        return
    for i, value in enumerate(column):
        if type(value) not in kinds or (value is not None and not low <= value <= high):
            bad.add(i)


def _parse_times(column: list[Any], bad: set[int]) -> list[datetime | None]:
    times: list[datetime | None] = [None] * len(column)
    parse = datetime.fromisoformat
    match = _EVENT_TIME.fullmatch
    for i, value in enumerate(column):
        if type(value) is not str or match(value) is None:
            bad.add(i)
            continue
        try:
            parsed = parse(value)
        except ValueError:  # e.g. month 13: the model words the error
            bad.add(i)
            continue
        times[i] = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return times
