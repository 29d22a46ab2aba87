"""Serving cost is measured through Predictor, for every candidate, within a time budget."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from schemas.features import FEATURES
from training import candidates
from training.serving_cost import CostPlan, measure
from training.synthetic import generate


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows = frame[list(FEATURES)].to_dict("records")
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows]


@pytest.fixture(scope="module")
def fitted() -> dict[str, Any]:
    train = generate(800, seed=2)
    built = candidates.build(["logistic_regression", "random_forest"], seed=0)
    for pipeline in built.values():
        pipeline.fit(train, train["churn"])
        pipeline.named_steps["model"].n_jobs = None
    return built


def test_every_candidate_gets_single_and_batch_figures(fitted: dict[str, Any]) -> None:
    held_out = records(generate(120, seed=9))
    plan = CostPlan(single_calls=60, batch_size=50, batch_calls=4, rounds=3, warmup_calls=5)
    costs = measure(fitted, held_out, plan)
    assert set(costs) == set(fitted)
    for name, cost in costs.items():
        assert 0 < cost.single_p50_us <= cost.single_p99_us, name
        assert cost.batch_us_per_row > 0
        assert cost.batch_size == 50
        assert plan.min_single_calls <= cost.single_calls <= 60
        assert plan.min_batch_calls <= cost.batch_calls <= 4
    assert costs["logistic_regression"].fast_path and not costs["random_forest"].fast_path
    # A compiled linear model is cheaper per record than 300 trees through sklearn, on any machine.
    assert costs["logistic_regression"].single_p50_us < costs["random_forest"].single_p50_us
    assert set(costs["random_forest"].as_dict()) == {
        "single_p50_us",
        "single_p99_us",
        "batch_us_per_row",
        "single_calls",
        "batch_calls",
        "batch_size",
        "fast_path",
    }


def test_a_slow_candidate_gets_fewer_calls_within_the_budget(fitted: dict[str, Any]) -> None:
    held_out = records(generate(40, seed=10))
    plan = CostPlan(single_calls=10_000, batch_size=20, batch_calls=500, rounds=2, budget_seconds=0.05)
    cost = measure({"random_forest": fitted["random_forest"]}, held_out, plan)["random_forest"]
    assert plan.min_single_calls <= cost.single_calls < 10_000
    assert plan.min_batch_calls <= cost.batch_calls < 500


def test_no_records_is_an_error(fitted: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="at least one record"):
        measure(fitted, [])
