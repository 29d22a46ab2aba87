"""Load and clean telco-format customer data (CSV) into a typed, validated frame.

Real exports of the telco customer-churn data have quirks this module absorbs:
a UTF-8 byte-order mark, ``TotalCharges`` stored as text and blank for
brand-new customers, ``Churn`` as ``Yes``/``No``, stray whitespace. Columns may
use either the telco names or the snake_case wire names.

Validation is vectorised (one pass per column) and follows the same rules as
:class:`schemas.CustomerEvent`; every problem names the row and the column.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from schemas.features import (
    CATEGORIES,
    FEATURES,
    FOLDED_NAMES,
    FROM_TELCO,
    ID_COLUMN,
    NUMERIC_RANGES,
    TARGET,
)

log = logging.getLogger(__name__)

_TRUTHY = {"yes": 1, "true": 1, "1": 1, "1.0": 1, "no": 0, "false": 0, "0": 0, "0.0": 0}
_INTEGER_COLUMNS = ("tenure",)
_OPTIONAL_NUMERIC = ("total_charges",)


@dataclass(frozen=True)
class Problem:
    """One invalid value: 1-based data row (header excluded), column and reason."""

    row: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column!r}: {self.reason}"


class DataError(ValueError):
    """The data cannot be used as it is; ``problems`` lists every invalid value."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        self.problems = problems or []
        shown = "\n".join(f"  - {p}" for p in self.problems[:20])
        more = len(self.problems) - 20
        if more > 0:
            shown += f"\n  ... and {more} more"
        super().__init__(f"{message}\n{shown}" if shown else message)


def read_csv(path: Path | str) -> pd.DataFrame:
    """Read a telco-format CSV as text columns, renamed to snake_case."""
    try:
        raw = pd.read_csv(
            path, dtype=str, keep_default_na=False, encoding="utf-8-sig", skipinitialspace=False
        )
    except FileNotFoundError:
        raise
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from exc
    raw.columns = [str(c).strip() for c in raw.columns]
    # the telco names, or the field names in another case (some exports write ``Tenure``)
    return raw.rename(columns=lambda c: FROM_TELCO.get(c) or FOLDED_NAMES.get(c.casefold(), c))


def clean(raw: pd.DataFrame, *, require_target: bool) -> pd.DataFrame:
    """Validate and type a frame of text columns; raise :class:`DataError` listing every problem.

    The result has ``customer_id`` (str), the features in :data:`FEATURES` with their
    proper dtypes (``total_charges`` may be NaN) and, when present, ``churn`` as 0/1.
    """
    needed = [*FEATURES] + ([TARGET] if require_target else [])
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise DataError(f"missing columns: {', '.join(missing)}")

    problems: list[Problem] = []
    out = pd.DataFrame(index=raw.index)
    text = {c: _stripped(raw[c]) for c in {*needed, ID_COLUMN, TARGET} if c in raw.columns}

    if ID_COLUMN in raw.columns:
        out[ID_COLUMN] = text[ID_COLUMN]
    else:
        out[ID_COLUMN] = [f"row-{i + 1}" for i in range(len(raw))]

    for name, levels in CATEGORIES.items():
        values = text[name]
        bad = ~values.isin(levels)
        problems += _problems(
            bad, name, lambda v, lv=levels: f"unknown category {v!r}; expected one of {list(lv)}", values
        )
        out[name] = values

    flag = text["senior_citizen"].str.lower().map(_TRUTHY)
    problems += _problems(
        flag.isna(), "senior_citizen", lambda v: f"{v!r} is not 0/1", text["senior_citizen"]
    )
    out["senior_citizen"] = flag.fillna(0).astype(np.int64)

    for name, (low, high) in NUMERIC_RANGES.items():
        values = text[name]
        blank = values == ""
        number = pd.to_numeric(values, errors="coerce")
        unparsable = number.isna() & ~blank if name in _OPTIONAL_NUMERIC else number.isna()
        problems += _problems(unparsable, name, lambda v: f"{v!r} is not a number", values)
        finite = np.isfinite(number.to_numpy(dtype=np.float64, na_value=np.nan))
        nonfinite = ~unparsable & number.notna() & ~finite
        problems += _problems(nonfinite, name, lambda v: f"{v!r} is not finite", values)
        out_of_range = finite & ((number < low) | (number > high))
        problems += _problems(
            pd.Series(out_of_range, index=raw.index),
            name,
            lambda v, lo=low, hi=high: f"{v} is outside [{lo:g}, {hi:g}]",
            values,
        )
        if name in _INTEGER_COLUMNS:
            fractional = finite & (number.fillna(0) % 1 != 0)
            problems += _problems(
                pd.Series(fractional, index=raw.index), name, lambda v: f"{v} is not a whole number", values
            )
        out[name] = number.astype(np.float64)
    out["tenure"] = out["tenure"].fillna(0).astype(np.int64)

    if TARGET in raw.columns:
        target = text[TARGET].str.lower().map(_TRUTHY)
        problems += _problems(target.isna(), TARGET, lambda v: f"{v!r} is not Yes/No", text[TARGET])
        out[TARGET] = target.fillna(0).astype(np.int64)

    if problems:
        problems.sort(key=lambda p: (p.row, p.column))
        raise DataError(f"{len(problems)} invalid value(s)", problems)
    return out.reset_index(drop=True)


def load_csv(path: Path | str, *, require_target: bool = True) -> pd.DataFrame:
    """Read and clean a telco-format CSV file."""
    frame = clean(read_csv(path), require_target=require_target)
    log.info("loaded %d rows from %s", len(frame), path)
    return frame


def fingerprint(frame: pd.DataFrame) -> str:
    """A stable sha256 of the cleaned data (features and target), for the manifest."""
    columns = [c for c in (ID_COLUMN, *FEATURES, TARGET) if c in frame.columns]
    hashed = pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def to_telco_csv(frame: pd.DataFrame, path: Path | str) -> None:
    """Write a cleaned frame back in the public telco format (blank TotalCharges, Yes/No)."""
    from schemas.features import TELCO_ALIASES

    out = frame.copy()
    out["total_charges"] = out["total_charges"].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    if TARGET in out.columns:
        out[TARGET] = out[TARGET].map({1: "Yes", 0: "No"})
    columns = [c for c in (ID_COLUMN, *FEATURES, TARGET) if c in out.columns]
    out[columns].rename(columns=TELCO_ALIASES).to_csv(path, index=False)


def _stripped(column: pd.Series) -> pd.Series:
    """Whitespace-stripped text; strips each distinct value once (columns repeat a few levels)."""
    codes, uniques = pd.factorize(column.astype(str), use_na_sentinel=False)
    cleaned = np.array([u.strip() for u in uniques], dtype=object)
    return pd.Series(cleaned[codes], index=column.index)


def _problems(mask: pd.Series, column: str, reason: object, values: pd.Series) -> list[Problem]:
    if not mask.any():
        return []
    positions = np.flatnonzero(mask.to_numpy())
    return [
        Problem(int(i) + 1, column, reason(values.iloc[i]))  # type: ignore[operator]
        for i in positions
    ]
