"""Turn customer records into the numeric design matrix every model is trained on.

The encoder is stateless: its vocabularies come from :mod:`schemas.features`,
so it needs no fitting and cannot drift from the wire contract. It has two
entry points that share one assembly step, which is what makes the fast
scoring path give bit-identical inputs to the fitted sklearn pipeline:

* ``transform(frame)`` — a pandas DataFrame with snake_case columns (training,
  offline ``churn predict``);
* ``encode_records(records)`` — validated pydantic models or plain dicts
  (the stream scorer and the API), without building a DataFrame.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from schemas.features import CATEGORIES, YES_NO_FEATURES

#: Numeric columns, first in the design matrix (splines and scalers address them by index).
NUMERIC_COLUMNS: tuple[str, ...] = ("tenure", "monthly_charges", "total_charges")
#: Two-valued categories are encoded as one 0/1 column (value == second level).
BINARY_COLUMNS: tuple[str, ...] = ("gender", *YES_NO_FEATURES)
#: Multi-level categories are one-hot encoded over their full vocabulary.
ONEHOT_COLUMNS: tuple[str, ...] = tuple(name for name, levels in CATEGORIES.items() if len(levels) > 2)

_BINARY_POSITIVE = {name: CATEGORIES[name][1] for name in BINARY_COLUMNS}
WIDTH = 4 + len(BINARY_COLUMNS) + sum(len(CATEGORIES[c]) for c in ONEHOT_COLUMNS)


def _level_columns() -> dict[str, dict[str, int]]:
    """For each categorical feature, the design-matrix column that each level sets to 1."""
    index: dict[str, dict[str, int]] = {}
    col = 4
    for name in BINARY_COLUMNS:
        index[name] = {_BINARY_POSITIVE[name]: col}
        col += 1
    for name in ONEHOT_COLUMNS:
        index[name] = {}
        for level in CATEGORIES[name]:
            index[name][level] = col
            col += 1
    return index


_LEVEL_COLUMNS = _level_columns()
_NO_LEVEL = itertools.repeat(-1)  # the default of ``levels.get`` when mapped over a column
_NUMBER_COLUMNS = (*NUMERIC_COLUMNS, "senior_citizen")
#: Per feature: the levels that set a column, and those columns followed by -1 (for "no level").
_LEVELS = {name: list(columns) for name, columns in _LEVEL_COLUMNS.items()}
_LEVEL_INDEX = {
    name: np.array([*columns.values(), -1], dtype=np.intp) for name, columns in _LEVEL_COLUMNS.items()
}


def feature_names() -> list[str]:
    """Names of the design-matrix columns, in order."""
    names = [*NUMERIC_COLUMNS, "senior_citizen"]
    names += [f"{name}={_BINARY_POSITIVE[name]}" for name in BINARY_COLUMNS]
    for name in ONEHOT_COLUMNS:
        names += [f"{name}={level}" for level in CATEGORIES[name]]
    return names


def impute_total_charges(total: np.ndarray, tenure: np.ndarray, monthly: np.ndarray) -> np.ndarray:
    """Blank TotalCharges means a brand-new customer: use tenure * monthly (0 at tenure 0)."""
    missing = np.isnan(total)
    if missing.any():
        total = np.where(missing, tenure * monthly, total)
    return total


class FeatureEncoder(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Stateless encoder from customer records to a float64 design matrix."""

    def fit(self, X: Any, y: Any = None) -> FeatureEncoder:  # noqa: N803 - sklearn API
        return self

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(feature_names(), dtype=object)

    def transform(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803 - sklearn API
        numbers = {name: X[name].to_numpy(dtype=np.float64, na_value=np.nan) for name in _NUMBER_COLUMNS}
        hits = np.empty((len(_LEVELS), len(X)), dtype=np.intp)
        for k, (name, levels) in enumerate(_LEVELS.items()):
            codes = pd.Categorical(X[name], categories=levels).codes
            hits[k] = _LEVEL_INDEX[name][codes]  # code -1 (unknown) picks the trailing -1
        return self._assemble(numbers, hits, len(X))

    def encode_records(self, records: Sequence[Any]) -> np.ndarray:
        """Encode pydantic models or mappings with snake_case keys."""
        get: Callable[[Any, str], Any] = _get_item if records and isinstance(records[0], Mapping) else getattr
        columns = {name: [get(r, name) for r in records] for name in (*_NUMBER_COLUMNS, *_LEVEL_COLUMNS)}
        return self.encode_columns(columns, len(records))

    def encode_columns(self, columns: Mapping[str, Sequence[Any]], n: int) -> np.ndarray:
        """Encode validated values given column by column: ``columns[feature][row]``."""
        numbers = {}
        for name in _NUMBER_COLUMNS:
            values = columns[name]
            if None in values:  # only total_charges may be missing; NaN marks it for imputation
                values = [np.nan if v is None else v for v in values]
            numbers[name] = np.array(values, dtype=np.float64)
        # One pass over every level column: the design column each value sets, or -1.
        lookups = (map(levels.get, columns[name], _NO_LEVEL) for name, levels in _LEVEL_COLUMNS.items())
        k = len(_LEVEL_COLUMNS)
        hits = np.fromiter(itertools.chain.from_iterable(lookups), dtype=np.intp, count=k * n)
        return self._assemble(numbers, hits.reshape(k, n), n)

    def encode_one(self, record: Any) -> np.ndarray:
        """One record as a 1-row matrix, equal to ``encode_records([record])``, ~10x faster."""
        get: Callable[[Any, str], Any] = _get_item if isinstance(record, Mapping) else getattr
        tenure = float(get(record, "tenure"))
        monthly = float(get(record, "monthly_charges"))
        total = get(record, "total_charges")
        row = [0.0] * WIDTH
        row[0] = tenure
        row[1] = monthly
        row[2] = tenure * monthly if total is None or total != total else float(total)
        row[3] = float(get(record, "senior_citizen"))
        for name, levels in _LEVEL_COLUMNS.items():
            col = levels.get(get(record, name))
            if col is not None:
                row[col] = 1.0
        return np.array([row], dtype=np.float64)

    @staticmethod
    def _assemble(numbers: dict[str, np.ndarray], hits: np.ndarray, n: int) -> np.ndarray:
        """``hits[k, row]``: the design column that the row's value of level feature k sets to 1, or -1."""
        out = np.zeros((n, WIDTH), dtype=np.float64)
        tenure = numbers["tenure"]
        monthly = numbers["monthly_charges"]
        out[:, 0] = tenure
        out[:, 1] = monthly
        out[:, 2] = impute_total_charges(numbers["total_charges"], tenure, monthly)
        out[:, 3] = numbers["senior_citizen"]
        found = hits >= 0
        rows = np.broadcast_to(np.arange(n), hits.shape)
        out[rows[found], hits[found]] = 1.0
        return out


def _get_item(record: Mapping[str, Any], name: str) -> Any:
    return record[name]


def column_features() -> list[str]:
    """For each design-matrix column, the wire feature it encodes (one-hot levels share one)."""
    names = [*NUMERIC_COLUMNS, "senior_citizen", *BINARY_COLUMNS]
    for name in ONEHOT_COLUMNS:
        names += [name] * len(CATEGORIES[name])
    return names
