"""What each candidate costs to serve, measured through the scoring core on held-out rows.

Every candidate is wrapped in :class:`models.predictor.Predictor` exactly as the
API and the stream scorer load it (compiled fast path checked against sklearn
first), then timed on:

* single records — ``predict_one`` on one held-out customer at a time (the API's
  ``/predict``): median and 99th percentile of the per-call wall time;
* batches — ``predict_columns`` on ``batch_size`` held-out customers given column
  by column (the stream scorer's call): wall time per row.

The candidates are measured in interleaved rounds, so a machine that gets busier
halfway slows all of them alike rather than whichever came last. A candidate
that is slow per call (a random forest takes milliseconds) gets fewer calls
within a time budget instead of stretching the training run; the number of
calls is recorded next to the figures.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from models.predictor import Predictor
from schemas.features import FEATURES


@dataclass(frozen=True)
class CostPlan:
    """How much to measure: calls per candidate, batch size, rounds, and the time budget."""

    single_calls: int = 300
    batch_size: int = 500
    batch_calls: int = 10
    rounds: int = 5
    warmup_calls: int = 20
    min_single_calls: int = 25
    min_batch_calls: int = 3
    budget_seconds: float = 0.5  # per candidate, for its single calls and again for its batches


@dataclass(frozen=True)
class ServingCost:
    single_p50_us: float
    single_p99_us: float
    batch_us_per_row: float
    single_calls: int
    batch_calls: int
    batch_size: int
    fast_path: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(
    pipelines: Mapping[str, Pipeline], records: Sequence[Mapping[str, Any]], plan: CostPlan | None = None
) -> dict[str, ServingCost]:
    """Serving cost of each fitted pipeline on ``records`` (validated snake_case dicts)."""
    plan = plan or CostPlan()
    if not records:
        raise ValueError("serving cost needs at least one record")
    predictors = {name: Predictor(pipeline, {"version": name}) for name, pipeline in pipelines.items()}
    batch = [records[i % len(records)] for i in range(plan.batch_size)]
    columns = {name: [r[name] for r in batch] for name in FEATURES}
    single: dict[str, list[int]] = {name: [] for name in predictors}
    batches: dict[str, list[int]] = {name: [] for name in predictors}
    quota: dict[str, tuple[int, int]] = {}
    for name, predictor in predictors.items():
        predictor.check_fast_path(list(records[:64]))
        quota[name] = _quota(predictor, records, columns, plan)
    for round_no in range(plan.rounds):
        for name, predictor in predictors.items():
            singles, batch_calls = quota[name]
            for i in _share(singles, plan.rounds, round_no):
                record = records[i % len(records)]
                started = time.perf_counter_ns()
                predictor.predict_one(record)
                single[name].append(time.perf_counter_ns() - started)
            for _ in _share(batch_calls, plan.rounds, round_no):
                started = time.perf_counter_ns()
                predictor.predict_columns(columns, plan.batch_size)
                batches[name].append(time.perf_counter_ns() - started)
    return {
        name: ServingCost(
            single_p50_us=float(np.percentile(single[name], 50)) / 1e3,
            single_p99_us=float(np.percentile(single[name], 99)) / 1e3,
            batch_us_per_row=float(np.median(batches[name])) / 1e3 / plan.batch_size,
            single_calls=len(single[name]),
            batch_calls=len(batches[name]),
            batch_size=plan.batch_size,
            fast_path=predictors[name].fast_path,
        )
        for name in predictors
    }


def _quota(
    predictor: Predictor,
    records: Sequence[Mapping[str, Any]],
    columns: Mapping[str, Sequence[Any]],
    plan: CostPlan,
) -> tuple[int, int]:
    """Warm up; then the calls that fit the time budget, within [minimum, planned]."""
    started = time.perf_counter()
    for i in range(plan.warmup_calls):
        predictor.predict_one(records[i % len(records)])
    per_single = (time.perf_counter() - started) / plan.warmup_calls
    started = time.perf_counter()
    predictor.predict_columns(columns, plan.batch_size)
    per_batch = time.perf_counter() - started
    singles = int(min(plan.single_calls, max(plan.min_single_calls, plan.budget_seconds / per_single)))
    batch_calls = int(min(plan.batch_calls, max(plan.min_batch_calls, plan.budget_seconds / per_batch)))
    return singles, batch_calls


def _share(total: int, rounds: int, round_no: int) -> range:
    """Indices of this round's share of ``total`` calls (rounds differ by at most one call)."""
    start = total * round_no // rounds
    return range(start, total * (round_no + 1) // rounds)
