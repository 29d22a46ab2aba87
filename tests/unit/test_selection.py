"""The selection rule: ROC AUC first, then the cheapest to serve within the tolerance."""

from __future__ import annotations

import math
import statistics

import pytest

from training.selection import Figures, cheapest, select
from training.serving_cost import ServingCost


def cost(p50: float, batch: float = 2.0) -> ServingCost:
    return ServingCost(
        single_p50_us=p50,
        single_p99_us=p50 * 3,
        batch_us_per_row=batch,
        single_calls=300,
        batch_calls=10,
        batch_size=500,
        fast_path=True,
    )


#: Fold scores with a sample standard deviation of 0.0109: standard error 0.0109 / sqrt(5) = 0.0049.
FOLDS = [0.838, 0.846, 0.851, 0.856, 0.867]


def figures() -> list[Figures]:
    return [
        Figures("blend", 0.8485, FOLDS, cost(87.0, 9.0)),
        Figures("spline_logistic", 0.8479, FOLDS, cost(12.0, 2.0)),
        Figures("gradient_boosting", 0.8456, FOLDS, cost(60.0, 8.0)),
        Figures("logistic_regression", 0.8418, FOLDS, cost(8.0, 1.5)),  # cheapest, but too far behind
        Figures("random_forest", 0.8408, FOLDS, cost(9000.0, 80.0)),
    ]


def test_default_tolerance_is_one_standard_error_of_the_best_cv_roc_auc() -> None:
    chosen = select(figures())
    assert chosen.best == "blend"
    assert chosen.tolerance == pytest.approx(statistics.stdev(FOLDS) / math.sqrt(5))
    assert chosen.eligible == ["blend", "spline_logistic", "gradient_boosting"]
    assert chosen.winner == "spline_logistic"
    assert chosen.margin == pytest.approx(0.0006)
    assert "standard error of blend's 5-fold CV ROC AUC" in chosen.tolerance_source
    assert "cheapest to serve" in chosen.reason and "12.0 µs" in chosen.reason and "87.0 µs" in chosen.reason


def test_a_wider_tolerance_admits_a_cheaper_model_and_zero_keeps_the_best() -> None:
    assert select(figures(), tolerance=0.01).winner == "logistic_regression"
    strict = select(figures(), tolerance=0.0)
    assert strict.winner == "blend" and strict.eligible == ["blend"]
    assert "no other candidate" in strict.reason
    assert "--auc-tolerance" in strict.tolerance_source


def test_best_auc_ignores_cost() -> None:
    chosen = select(figures(), rule="best-auc")
    assert chosen.winner == "blend" and chosen.margin == 0.0
    assert "best-auc" in chosen.reason


def test_latencies_within_ten_percent_tie_and_batch_cost_decides() -> None:
    tied = [
        Figures("a", 0.85, FOLDS, cost(10.0, batch=3.0)),
        Figures("b", 0.85, FOLDS, cost(10.9, batch=1.0)),  # 9 % slower per record, 3x cheaper in batches
        Figures("c", 0.85, FOLDS, cost(11.5, batch=0.5)),  # 15 % slower: not a tie
    ]
    assert cheapest(tied).name == "b"
    same = [Figures("x", 0.84, FOLDS, cost(10.0)), Figures("y", 0.85, FOLDS, cost(10.0))]
    assert cheapest(same).name == "y"  # equal cost: the higher ROC AUC


def test_a_tie_in_roc_auc_goes_to_the_cheaper_candidate() -> None:
    pair = [Figures("dear", 0.85, FOLDS, cost(90.0)), Figures("cheap", 0.85, FOLDS, cost(10.0))]
    assert select(pair, rule="best-auc").winner == "cheap"
    assert select(pair, tolerance=0.0).winner == "cheap"


def test_single_fold_or_candidate_and_bad_arguments() -> None:
    only = [Figures("only", 0.8, [0.8], cost(5.0))]
    chosen = select(only)
    assert chosen.winner == "only" and chosen.tolerance == 0.0
    assert "the only candidate" in chosen.reason
    with pytest.raises(ValueError, match="no candidates"):
        select([])
    with pytest.raises(ValueError, match="negative"):
        select(figures(), tolerance=-0.1)
    with pytest.raises(ValueError, match="unknown selection rule"):
        select(figures(), rule="fastest")  # type: ignore[arg-type]
