"""The retention figures: people per 1,000 at the threshold, cumulative gains, lift by decile."""

from __future__ import annotations

import numpy as np
import pytest

from training.retention import cumulative_gains, decile_lift, headline, per_thousand, top_decile_lift


def test_per_thousand_counts_people_at_the_threshold() -> None:
    y = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    people = per_thousand(y, p, threshold=0.5)
    assert people.flagged == pytest.approx(300)
    assert people.caught == pytest.approx(200)
    assert people.false_alarms == pytest.approx(100)
    assert people.missed == pytest.approx(100)
    assert people.churners == pytest.approx(300)
    assert people.precision == pytest.approx(2 / 3)
    assert people.recall == pytest.approx(2 / 3)


def test_gains_run_from_nothing_to_everyone_and_rank_by_score() -> None:
    y = np.array([0, 1, 0, 1])
    contacted, caught = cumulative_gains(y, np.array([0.1, 0.9, 0.2, 0.8]))
    np.testing.assert_allclose(contacted, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(caught, [0, 0.5, 1.0, 1.0, 1.0])


def test_lift_of_a_perfect_and_a_useless_ranking() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.25).astype(int)
    perfect = y + rng.random(2000) * 0.1  # every churner above every stayer
    assert top_decile_lift(y, perfect) == pytest.approx(1 / y.mean())
    assert decile_lift(y, perfect)[-1] == 0.0
    useless = rng.random(2000)
    assert abs(top_decile_lift(y, useless) - 1.0) < 0.35
    assert decile_lift(np.zeros(10, dtype=int), useless[:10]).tolist() == [0.0] * 10


def test_headline_holds_what_the_report_and_cli_print() -> None:
    y = np.array([1, 0, 1, 0, 0])
    figures = headline(y, np.array([0.9, 0.1, 0.6, 0.4, 0.2]), 0.5)
    assert figures["held_out_rows"] == 5 and figures["roc_auc"] == 1.0
    assert len(figures["decile_lift"]) == 10 and figures["top_decile_lift"] == figures["decile_lift"][0]
    assert figures["per_1000"]["flagged"] == pytest.approx(400)
