"""Joining live predictions with outcomes (`churn models compare`): the quality job's rule, in time order."""

from __future__ import annotations

from scorer.live_pairs import join
from scorer.quality_records import OutcomeSeen, PredictionSeen

DAY = 86400.0


def _p(customer: str, version: str, p: float, t: float, role: str = "champion") -> PredictionSeen:
    return PredictionSeen(customer, version, p, 0.5, t, t + 1, role)


def test_each_outcome_labels_the_latest_prediction_before_it_per_version() -> None:
    predictions = [
        _p("a", "v1", 0.2, 10),
        _p("a", "v1", 0.7, 20),  # the latest before the outcome: this one is labelled
        _p("a", "v2", 0.6, 20, "challenger"),
        _p("a", "v1", 0.1, 40),  # after the outcome: never replaces the labelled one
        _p("b", "v1", 0.3, 10),  # no challenger prediction for b
        _p("c", "v1", 0.9, 5),  # no outcome for c
    ]
    outcomes = [OutcomeSeen("a", True, 30), OutcomeSeen("b", False, 30)]
    pairs = join(list(reversed(predictions)), outcomes, horizon_s=90 * DAY)  # arrival order does not matter
    assert pairs.labelled == {"a": {"v1": (0.7, 1), "v2": (0.6, 1)}, "b": {"v1": (0.3, 0)}}
    assert pairs.latest == {"champion": "v1", "challenger": "v2"}
    labels, a, b = pairs.paired("v1", "v2")
    assert labels.tolist() == [1] and a.tolist() == [0.7] and b.tolist() == [0.6]
    assert pairs.versions() == {"v1": 2, "v2": 1}


def test_predictions_older_than_the_horizon_are_not_labelled() -> None:
    pairs = join([_p("a", "v1", 0.5, 0)], [OutcomeSeen("a", False, 2 * DAY)], horizon_s=DAY)
    assert pairs.labelled == {}
