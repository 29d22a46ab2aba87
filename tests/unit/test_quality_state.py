"""The join of outcomes with predictions, on plain dicts: order, horizon, grace, window, replays, rebuild."""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field

import numpy as np
import pytest

from scorer.quality_records import CHALLENGER, CHAMPION, OutcomeSeen, PredictionSeen
from scorer.quality_state import QualityState

DAY = 86400.0
T0 = 1_780_000_000.0


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Observer:
    joins: list[tuple[str, str, float]] = field(default_factory=list)
    unmatched_count: int = 0

    def joined(self, version: str, role: str, label_delay_s: float) -> None:
        self.joins.append((version, role, label_delay_s))

    def unmatched(self) -> None:
        self.unmatched_count += 1


def make(
    clock: Clock, *, window: int = 100, horizon_days: float = 90, grace_s: float = 300
) -> tuple[QualityState, Observer]:
    observer = Observer()
    state = QualityState(
        {},
        {},
        {},
        window=window,
        horizon_s=horizon_days * DAY,
        grace_s=grace_s,
        observer=observer,
        clock=clock,
    )
    return state, observer


def prediction(
    customer: str, at: float, p: float = 0.3, version: str = "v1", role: str = CHAMPION
) -> PredictionSeen:
    return PredictionSeen(customer, version, p, 0.5, at, at + 0.01, role)


def pairs(state: QualityState, version: str = "v1") -> list[tuple[float, int]]:
    window = state.windows()[version]
    return list(zip(window.probabilities.tolist(), window.labels.tolist(), strict=True))


def test_an_outcome_labels_the_latest_prediction_of_each_version() -> None:
    clock = Clock()
    state, observer = make(clock)
    state.on_prediction(prediction("a", T0 - 100, 0.2))
    state.on_prediction(prediction("a", T0 - 50, 0.7))  # the latest replaces the first
    state.on_prediction(prediction("a", T0 - 40, 0.9, version="v2", role=CHALLENGER))
    state.on_outcome(OutcomeSeen("a", True, T0))
    assert pairs(state, "v1") == [(0.7, 1)]
    assert pairs(state, "v2") == [(0.9, 1)]
    assert state.windows()["v2"].role == CHALLENGER
    assert sorted(observer.joins) == [("v1", CHAMPION, 50.0), ("v2", CHALLENGER, 40.0)]


def test_an_outcome_that_arrives_first_waits_for_its_prediction() -> None:
    clock = Clock()
    state, observer = make(clock, grace_s=60)
    state.on_outcome(OutcomeSeen("a", False, T0))
    assert state.windows() == {}
    clock.now += 30
    state.on_prediction(prediction("a", T0 - 10, 0.4))  # still within the grace period
    state.on_prediction(prediction("a", T0 - 5, 0.6, version="v2"))  # and a second version's, later
    assert pairs(state, "v1") == [(0.4, 0)] and pairs(state, "v2") == [(0.6, 0)]
    clock.now += 60
    report = state.sweep()
    assert (report.outcomes_expired, report.unmatched, observer.unmatched_count) == (1, 0, 0)
    assert state.pending == {}


def test_an_outcome_no_prediction_comes_for_counts_as_unmatched_after_the_grace() -> None:
    clock = Clock()
    state, observer = make(clock, grace_s=60)
    state.on_outcome(OutcomeSeen("nobody", True, T0))
    clock.now += 59
    assert state.sweep().unmatched == 0
    clock.now += 2
    assert state.sweep().unmatched == 1
    assert observer.unmatched_count == 1
    state.on_prediction(prediction("nobody", T0 - 1))  # too late: the outcome is gone
    assert state.windows() == {}


def test_a_prediction_made_after_the_outcome_was_observed_is_not_labelled() -> None:
    clock = Clock()
    state, _ = make(clock)
    state.on_prediction(prediction("a", T0 + 10))
    state.on_outcome(OutcomeSeen("a", True, T0))
    assert state.windows() == {}


def test_predictions_older_than_the_horizon_are_swept_and_not_joined() -> None:
    clock = Clock()
    state, _ = make(clock, horizon_days=1)
    state.on_prediction(prediction("old", T0 - 2 * DAY))
    state.on_prediction(prediction("young", T0 - 0.5 * DAY))
    state.on_prediction(prediction("mixed", T0 - 3 * DAY, version="v1"))
    state.on_prediction(prediction("mixed", T0 - 0.1 * DAY, version="v2"))
    assert state.tracked == 4
    report = state.sweep()
    assert report.predictions_dropped == 2
    assert set(state.predictions) == {"young", "mixed"}
    assert set(state.predictions["mixed"]) == {"v2"}
    assert state.tracked == 2
    # An outcome more than a horizon after the prediction does not label it, swept or not.
    state.on_prediction(prediction("late", T0 - 0.9 * DAY))
    state.on_outcome(OutcomeSeen("late", True, T0 + 0.2 * DAY))
    assert "v1" not in state.windows()


def test_labelled_pairs_older_than_the_horizon_are_swept_too() -> None:
    """A version that stopped predicting leaves the windows once its outcomes are a horizon old."""
    clock = Clock()
    state, _ = make(clock, horizon_days=1)
    state.on_prediction(prediction("a", T0 - 100, version="old"))
    state.on_outcome(OutcomeSeen("a", True, T0))
    clock.now = T0 + 1.5 * DAY
    state.on_prediction(prediction("b", T0 + DAY, version="new"))
    state.on_outcome(OutcomeSeen("b", False, T0 + 1.5 * DAY))
    report = state.sweep()
    assert report.labelled_dropped == 1
    assert set(state.windows()) == {"new"}
    assert state.sizes() == {"new": 1}


def test_the_horizon_follows_the_streams_clock_so_a_replay_of_old_data_is_kept() -> None:
    clock = Clock()
    state, _ = make(clock, horizon_days=1)
    year_ago = T0 - 365 * DAY
    for i in range(10):
        state.on_prediction(prediction(f"c{i}", year_ago + i * 3600))
    assert state.sweep().predictions_dropped == 0  # the stream is at year_ago + 9 h, not at T0
    state.on_prediction(prediction("now", year_ago + 2 * DAY))
    assert state.sweep().predictions_dropped == 10


def test_the_window_keeps_the_latest_n_pairs_by_observation_time() -> None:
    clock = Clock()
    state, _ = make(clock, window=5)
    for i in range(12):
        state.on_prediction(prediction(f"c{i}", T0 - 100, p=i / 100))
        state.on_outcome(OutcomeSeen(f"c{i}", i % 2 == 0, T0 + i))
    assert pairs(state) == [(i / 100, int(i % 2 == 0)) for i in range(7, 12)]
    assert len(state.labelled) == 5
    assert state.sizes() == {"v1": 5}


def test_reading_records_again_changes_nothing() -> None:
    """After a crash Faust delivers records again from the last commit: nothing may count twice."""
    clock = Clock()
    state, observer = make(clock)
    records: list[PredictionSeen | OutcomeSeen] = []
    for i in range(30):
        records.append(prediction(f"c{i}", T0 - 100 + i, p=(i % 10) / 10))
        records.append(OutcomeSeen(f"c{i}", i % 3 == 0, T0 + i))
    for record in records:
        _apply(state, record)
    before = (copy.deepcopy(state.predictions), copy.deepcopy(state.labelled), state.sizes())
    joins = len(observer.joins)
    for record in records[20:]:  # a replay from an earlier offset
        _apply(state, record)
    after = (state.predictions, state.labelled, state.sizes())
    assert after[0] == before[0] and after[1] == before[1] and after[2] == before[2]
    assert len(observer.joins) == joins


def test_rebuild_from_the_tables_gives_the_same_state() -> None:
    """What a restarted job does: Faust restores the tables, the indexes are rebuilt from them."""
    clock = Clock()
    state, _ = make(clock, window=20, horizon_days=2, grace_s=100)
    rng = random.Random(5)
    for _ in range(200):
        customer = f"c{rng.randrange(60)}"
        clock.now += 1
        if rng.random() < 0.5:
            _apply(state, prediction(customer, clock.now - rng.uniform(0, 3 * DAY), p=rng.random()))
        else:
            _apply(state, OutcomeSeen(customer, rng.random() < 0.3, clock.now))
    tables = [copy.deepcopy(t) for t in (state.predictions, state.labelled, state.pending)]
    restarted, _ = make(clock, window=20, horizon_days=2, grace_s=100)
    restarted.predictions, restarted.labelled, restarted.pending = tables
    restarted.rebuild()
    assert restarted.sizes() == state.sizes()
    assert restarted.tracked == state.tracked
    for version, window in state.windows().items():
        again = restarted.windows()[version]
        assert np.array_equal(again.probabilities, window.probabilities)
        assert np.array_equal(again.labels, window.labels)
    # Both go on the same way: the same sweep, the same joins.
    clock.now += DAY
    assert restarted.sweep().predictions_dropped == state.sweep().predictions_dropped
    assert restarted.predictions == state.predictions


def test_a_smaller_window_after_a_restart_trims_the_table() -> None:
    clock = Clock()
    state, _ = make(clock, window=10)
    for i in range(10):
        state.on_prediction(prediction(f"c{i}", T0 - 10))
        state.on_outcome(OutcomeSeen(f"c{i}", True, T0 + i))
    restarted, _ = make(clock, window=4)
    restarted.predictions, restarted.labelled, restarted.pending = (
        state.predictions,
        state.labelled,
        state.pending,
    )
    restarted.rebuild()
    assert restarted.sizes() == {"v1": 4}
    assert sorted(restarted.labelled) == ["c6", "c7", "c8", "c9"]


def test_a_late_older_prediction_does_not_replace_a_newer_one() -> None:
    clock = Clock()
    state, _ = make(clock)
    state.on_prediction(prediction("a", T0 - 10, 0.8))
    state.on_prediction(prediction("a", T0 - 20, 0.1))
    state.on_outcome(OutcomeSeen("a", True, T0))
    assert pairs(state) == [(0.8, 1)]


def test_window_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window"):
        QualityState({}, {}, {}, window=0, horizon_s=1, grace_s=1)


def _apply(state: QualityState, record: PredictionSeen | OutcomeSeen) -> None:
    if isinstance(record, PredictionSeen):
        state.on_prediction(record)
    else:
        state.on_outcome(record)
