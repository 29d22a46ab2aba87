"""``churn predict``'s input: the rows of a CSV file, each read with the input contract.

Every row is read as :func:`schemas.contract.validate_event` reads a record, so
a row is accepted or refused exactly as the same values published to the topic
or posted to ``/predict`` would be (docs/contract.md): the telco column names or
the snake_case ones, numbers as the file writes them, a blank ``TotalCharges``.
Rows come from :class:`csv.DictReader` (the header may start with a UTF-8
byte-order mark; names are trimmed), unknown columns such as ``Churn`` are
ignored, column names match ignoring case (``Tenure``), and a file without an
id column gets ``row-<n>`` ids. Every refused
row is reported with its 1-based data row and column before anything is scored.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd

from schemas.contract import Rejection, validate_event
from schemas.events import CustomerEvent
from schemas.features import FEATURES, FOLDED_NAMES, ID_COLUMN, TELCO_ALIASES

#: Problems listed in the error message; the rest are counted.
_LISTED: Final = 20


@dataclass(frozen=True)
class RowProblem:
    """One refused value: the 1-based data row (header excluded), the file's column, the reason."""

    row: int
    column: str
    reason: str
    type: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column!r}: {self.reason} ({self.type})"


class CsvInputError(ValueError):
    """The file cannot be scored as it is (the message says why)."""


class RowsRefusedError(CsvInputError):
    """Rows of the file break the input contract; ``problems`` lists every one."""

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        self.problems = list(problems)
        shown = "\n".join(f"  - {problem}" for problem in self.problems[:_LISTED])
        more = len(self.problems) - _LISTED
        if more > 0:
            shown += f"\n  ... and {more} more"
        super().__init__(f"{len(self.problems)} invalid value(s)\n{shown}")


@dataclass(frozen=True)
class CsvEvents:
    """The validated rows of a file, in order, and the name of its id column."""

    events: list[CustomerEvent]
    id_column: str

    def frame(self) -> pd.DataFrame:
        """The features as a frame (``total_charges`` None where unknown), for ``Predictor.*_frame``."""
        return pd.DataFrame({name: [getattr(e, name) for e in self.events] for name in FEATURES})


def read_events(path: Path) -> CsvEvents:
    """Every row of the CSV at ``path`` as an event.

    Raises :class:`RowsRefusedError` listing every refused value, or :class:`CsvInputError`
    for a file that is not UTF-8 CSV with the feature columns.
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            reader.fieldnames = header
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CsvInputError(f"not a readable UTF-8 CSV file ({exc})") from exc
    columns: dict[str, str] = {}  # field -> the file's column for it (names match ignoring case)
    for name in header:
        columns.setdefault(FOLDED_NAMES.get(name.casefold(), name), name)
    missing = [name for name in FEATURES if name != "total_charges" and name not in columns]
    if missing:
        raise CsvInputError(f"missing columns: {', '.join(TELCO_ALIASES[name] for name in missing)}")
    has_ids = ID_COLUMN in columns
    id_column = columns.get(ID_COLUMN, ID_COLUMN)
    events: list[CustomerEvent] = []
    problems: list[RowProblem] = []
    for number, row in enumerate(rows, start=1):
        values: dict[str, Any] = {name: value for name, value in row.items() if name is not None}
        if not has_ids:
            values[ID_COLUMN] = f"row-{number}"
        event = validate_event(values)
        if isinstance(event, Rejection):
            problems += [
                RowProblem(number, columns.get(error.field, error.field), error.reason, error.type)
                for error in event.errors
            ]
        else:
            events.append(event)
    if problems:
        raise RowsRefusedError(problems)
    return CsvEvents(events, id_column)
