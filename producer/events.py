"""Customer events to publish: synthetic customers or rows of a telco-format CSV.

Events are plain snake_case dicts (the wire format of ``CustomerEvent``) with a
fresh ``event_id`` (uuid4 hex) and ``event_time`` (now, UTC) stamped when they
are built, so they serialize with one ``orjson.dumps`` each. The ``labelled_``
sources pair each row with its churn label — the label the synthetic generator
drew for that customer, or the CSV's ``Churn`` column — for ``churn produce
--outcomes``; the label never travels in the event.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from schemas.features import FEATURES, ID_COLUMN, TARGET
from training.data import load_csv
from training.synthetic import generate

WIRE_COLUMNS = (ID_COLUMN, *FEATURES)


def frame_rows(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """The wire fields of each row of a cleaned frame (no event_id/event_time yet)."""
    columns = [c for c in WIRE_COLUMNS if c in frame.columns]
    for values in frame[columns].itertuples(index=False, name=None):
        row: dict[str, Any] = {}
        for name, value in zip(columns, values, strict=True):
            if hasattr(value, "item"):
                value = value.item()
            if isinstance(value, float) and math.isnan(value):
                value = None
            row[name] = value
        yield row


def labelled_rows(frame: pd.DataFrame) -> Iterator[tuple[dict[str, Any], bool]]:
    """The wire fields of each row of a cleaned frame with a ``churn`` column, and its label."""
    labels = frame[TARGET].to_numpy().astype(bool).tolist()
    yield from zip(frame_rows(frame), labels, strict=True)


def stamp(row: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """Add a fresh event_id and event_time (UTC now) to a row."""
    row["event_id"] = uuid.uuid4().hex
    row["event_time"] = (now or datetime.now(UTC)).isoformat()
    return row


def synthetic_labelled_rows(seed: int = 7, chunk: int = 10_000) -> Iterator[tuple[dict[str, Any], bool]]:
    """An endless stream of synthetic customers (chunks of the deterministic generator), each with
    the churn label the generator drew for it: the process ``churn train`` learns from."""
    index = 0
    while True:
        frame = generate(chunk, seed + index)
        # Customer ids restart in every chunk; make them unique across chunks.
        frame["customer_id"] = frame["customer_id"] + f"-{index}"
        yield from labelled_rows(frame)
        index += 1


def synthetic_rows(seed: int = 7, chunk: int = 10_000) -> Iterator[dict[str, Any]]:
    """An endless stream of synthetic customers (see :func:`synthetic_labelled_rows`), without labels."""
    return (row for row, _ in synthetic_labelled_rows(seed, chunk))


def csv_rows(path: Path | str) -> Iterator[dict[str, Any]]:
    """The rows of a telco-format CSV (the Churn column is optional and not sent)."""
    yield from frame_rows(load_csv(path, require_target=False))


def csv_labelled_rows(path: Path | str) -> Iterator[tuple[dict[str, Any], bool]]:
    """The rows of a telco-format CSV with their ``Churn`` label (the column is required)."""
    yield from labelled_rows(load_csv(path, require_target=True))


def synthetic_events(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` stamped synthetic events (handy for tests and benchmarks)."""
    rows = synthetic_rows(seed=seed, chunk=max(n, 1))
    return [stamp(next(rows)) for _ in range(n)]
