"""Stall detection (kafka_io.stall) and the engines' guard (scorer.stalls) on a fake clock, no broker."""

from __future__ import annotations

import logging

import pytest

from config.settings import Settings
from kafka_io.stall import FetchWaitLadder, LookupWatch, StallDetector
from monitoring.metrics import ScorerMetrics
from scorer.readiness import ASSIGNMENT, BROKER, DELIVERY, SCORING, STALL, Readiness
from scorer.stalls import StallGuard

TP0 = ("events", 0)
TP1 = ("events", 1)


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def _stalled(metrics: ScorerMetrics, tp: tuple[str, int]) -> float | None:
    labels = {"topic": tp[0], "partition": str(tp[1])}
    return metrics.registry.get_sample_value("churn_partition_stalled", labels)


def _recoveries(metrics: ScorerMetrics, tp: tuple[str, int], action: str) -> float | None:
    labels = {"topic": tp[0], "partition": str(tp[1]), "action": action}
    return metrics.registry.get_sample_value("churn_stall_recoveries_total", labels)


def _detector(
    after: float = 20.0,
) -> tuple[StallDetector, ScorerMetrics, FakeClock, list[set[tuple[str, int]]]]:
    metrics, clock = ScorerMetrics.create(), FakeClock()
    changes: list[set[tuple[str, int]]] = []
    detector = StallDetector(
        metrics.partition_stalled,
        metrics.stall_recoveries,
        stall_after_s=after,
        clock=clock,
        on_change=lambda stalled: changes.append(set(stalled)),
    )
    return detector, metrics, clock, changes


def _run(
    detector: StallDetector,
    clock: FakeClock,
    seconds: float,
    position: int | None,
    high: int,
    every: float = 2.0,
    **kwargs: bool,
) -> list[list[tuple[str, int]]]:
    """Observe TP0 every ``every`` s for ``seconds`` at a fixed position; what each call said was due."""
    said = []
    end = clock.now + seconds
    while clock.now < end:
        clock.now += every
        positions = {} if position is None else {TP0: position}
        said.append(detector.observe([TP0], positions, {TP0: high}, **kwargs))
    return said


def test_a_partition_that_keeps_moving_is_never_stalled() -> None:
    detector, metrics, clock, changes = _detector()
    for step in range(100):
        clock.now += 2.0
        assert detector.observe([TP0], {TP0: 10 * step}, {TP0: 10 * step + 5000}) == []
    assert _stalled(metrics, TP0) == 0
    assert changes == []


def test_lag_zero_is_not_a_stall_however_long_the_position_stays() -> None:
    detector, metrics, clock, changes = _detector()
    said = _run(detector, clock, 300.0, position=700, high=700)
    assert not any(said)
    assert _stalled(metrics, TP0) == 0
    assert changes == []


def test_no_progress_with_lag_stalls_after_the_configured_time_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    detector, metrics, clock, changes = _detector(after=20.0)
    caplog.set_level(logging.INFO, logger="kafka_io.stall")
    clock.now += 2.0
    detector.observe([TP0], {TP0: 100}, {TP0: 5000})  # first sight: the clock starts here
    started = clock.now
    said = _run(detector, clock, 18.0, position=100, high=5000)
    assert not any(said)  # 18 s without progress: not yet
    assert _stalled(metrics, TP0) == 0
    said = _run(detector, clock, 2.0, position=100, high=6000)
    assert said == [[TP0]]  # at 20 s: stalled, and the first recovery step is due
    assert clock.now - started == pytest.approx(20.0)
    assert _stalled(metrics, TP0) == 1
    assert changes == [{TP0}]
    assert detector.stalled()[TP0].lag == 5900
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "events[0] stalled" in warnings[0].getMessage()
    assert "lag 5900" in warnings[0].getMessage()
    _run(detector, clock, 60.0, position=100, high=7000)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1  # one per episode


def test_recovery_steps_escalate_one_window_apart_and_are_counted() -> None:
    detector, metrics, clock, _ = _detector(after=20.0)
    said = _run(detector, clock, 22.0, position=0, high=50_000)
    assert said[-1] == [TP0] and not any(said[:-1])
    assert detector.steps(TP0) == 0
    detector.step_taken([TP0], "seek")
    assert detector.steps(TP0) == 1
    said = _run(detector, clock, 18.0, position=0, high=50_000)
    assert not any(said)  # the step gets a full window to show progress
    said = _run(detector, clock, 2.0, position=0, high=50_000)
    assert said == [[TP0]]
    detector.step_taken([TP0], "recreate")
    assert detector.steps(TP0) == 2
    assert _recoveries(metrics, TP0, "seek") == 1
    assert _recoveries(metrics, TP0, "recreate") == 1


def test_moving_again_clears_the_stall_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    detector, metrics, clock, changes = _detector(after=20.0)
    caplog.set_level(logging.INFO, logger="kafka_io.stall")
    _run(detector, clock, 24.0, position=0, high=50_000)
    detector.step_taken([TP0], "seek")
    assert _stalled(metrics, TP0) == 1
    clock.now += 2.0
    assert detector.observe([TP0], {TP0: 1}, {TP0: 50_000}) == []
    assert _stalled(metrics, TP0) == 0
    assert detector.stalled() == {}
    assert detector.steps(TP0) == 0
    assert changes == [{TP0}, set()]
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("events[0] moves again (position 1)" in m and "1 recovery steps" in m for m in info)
    # A stall long after is a new episode: warned again, steps from 0.
    for _ in range(40):
        clock.now += 2.0
        detector.observe([TP0], {TP0: 10 * int(clock.now)}, {TP0: 10 * int(clock.now) + 5})
    position = 10 * int(clock.now)
    said = _run(detector, clock, 22.0, position=position, high=position + 60_000)
    assert [TP0] in said
    assert detector.steps(TP0) == 0
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


def test_a_relapse_soon_after_recovering_goes_on_up_the_ladder() -> None:
    detector, _, clock, _ = _detector(after=20.0)
    _run(detector, clock, 22.0, position=0, high=50_000)
    detector.step_taken([TP0], "seek")  # the seek seems to help...
    clock.now += 2.0
    detector.observe([TP0], {TP0: 600}, {TP0: 50_000})
    assert detector.stalled() == {}
    said = _run(detector, clock, 22.0, position=600, high=52_000)  # ...but 20 s later it is stuck again
    assert [TP0] in said
    assert detector.steps(TP0) == 1  # the next step escalates rather than seeking again


def test_a_creeping_partition_stays_stalled_until_it_moves_a_batch() -> None:
    detector, metrics, clock = _detector_with_progress(min_progress=500)
    position, due = 1000, []
    for _ in range(30):  # 3 records per tick (the broker answers now and then) with 20,000 waiting
        clock.now += 2.0
        position += 3
        now_due = detector.observe([TP0], {TP0: position}, {TP0: 21_000})
        if now_due:
            detector.step_taken(now_due, "seek")
        due += now_due
    assert _stalled(metrics, TP0) == 1
    assert len(due) >= 2  # detected, then escalated: creeping is no recovery
    clock.now += 2.0
    detector.observe([TP0], {TP0: position + 500}, {TP0: 21_000})
    assert _stalled(metrics, TP0) == 0


def test_a_trickle_the_consumer_keeps_up_with_is_not_a_stall() -> None:
    detector, metrics, clock = _detector_with_progress(min_progress=500)
    position = 0
    for _ in range(100):  # 2 records behind at every look, 2 records consumed per tick
        clock.now += 2.0
        position += 2
        assert detector.observe([TP0], {TP0: position}, {TP0: position + 2}) == []
    assert _stalled(metrics, TP0) == 0


def _detector_with_progress(min_progress: int) -> tuple[StallDetector, ScorerMetrics, FakeClock]:
    metrics, clock = ScorerMetrics.create(), FakeClock()
    detector = StallDetector(
        metrics.partition_stalled,
        metrics.stall_recoveries,
        stall_after_s=10.0,
        min_progress=min_progress,
        clock=clock,
    )
    return detector, metrics, clock


def test_catching_up_clears_a_stall_even_without_a_new_position() -> None:
    detector, metrics, clock, changes = _detector(after=10.0)
    _run(detector, clock, 12.0, position=300, high=400)
    assert _stalled(metrics, TP0) == 1
    clock.now += 2.0
    detector.observe([TP0], {TP0: 300}, {TP0: 300})  # the high watermark was ahead of the data
    assert _stalled(metrics, TP0) == 0
    assert changes == [{TP0}, set()]


def test_an_unknown_position_or_high_watermark_is_never_judged() -> None:
    detector, metrics, clock, _ = _detector(after=10.0)
    for _ in range(30):
        clock.now += 2.0
        assert detector.observe([TP0, TP1], {TP1: 5}, {TP0: 100}) == []
    assert _stalled(metrics, TP0) == 0
    assert _stalled(metrics, TP1) == 0


def test_hold_restarts_the_clocks() -> None:
    detector, metrics, clock, _ = _detector(after=20.0)
    said = _run(detector, clock, 60.0, position=0, high=100, hold=True)
    assert not any(said)
    assert _stalled(metrics, TP0) == 0
    said = _run(detector, clock, 18.0, position=0, high=100)
    assert not any(said)  # the window starts when the hold ends
    said = _run(detector, clock, 4.0, position=0, high=100)
    assert any(said)


def test_a_gap_between_observations_longer_than_the_window_is_not_a_stall() -> None:
    detector, metrics, clock, _ = _detector(after=20.0)
    clock.now += 2.0
    detector.observe([TP0], {TP0: 0}, {TP0: 100})
    clock.now += 45.0  # the observer itself was blocked (liveness reports that)
    assert detector.observe([TP0], {TP0: 0}, {TP0: 100}) == []
    assert _stalled(metrics, TP0) == 0


def test_partitions_no_longer_assigned_are_forgotten_with_their_series() -> None:
    detector, metrics, clock, changes = _detector(after=10.0)
    for _ in range(7):
        clock.now += 2.0
        detector.observe([TP0, TP1], {TP0: 0, TP1: 0}, {TP0: 10, TP1: 0})
    assert _stalled(metrics, TP0) == 1 and _stalled(metrics, TP1) == 0
    clock.now += 2.0
    detector.observe([TP1], {TP1: 0}, {TP1: 0})
    assert _stalled(metrics, TP0) is None
    assert changes == [{TP0}, set()]
    detector.forget([TP1])
    assert _stalled(metrics, TP1) is None


def test_fetch_wait_ladder_raises_four_times_per_step_up_to_the_cap() -> None:
    ladder = FetchWaitLadder(25, 1000)
    assert [ladder.raise_wait() for _ in range(5)] == [100, 400, 1000, None, None]
    assert ladder.current == 1000
    assert FetchWaitLadder(2000, 1000).raise_wait() is None


# --- the engines' guard ----------------------------------------------------------------


def _guard(**settings: float) -> tuple[StallGuard, Readiness, ScorerMetrics, FakeClock]:
    metrics, clock = ScorerMetrics.create(), FakeClock()
    readiness = Readiness(metrics.scorer_ready, metrics.scorer_condition, clock=clock)
    readiness.set(ASSIGNMENT, True)
    config = Settings(stall_after_s=10.0, stall_max_fetch_wait_ms=400, **settings)  # type: ignore[arg-type]
    return StallGuard(config, metrics, readiness, initial_wait_ms=25, clock=clock), readiness, metrics, clock


def test_guard_turns_readiness_false_naming_the_partition_then_true_again() -> None:
    guard, readiness, _, clock = _guard()
    plans = []
    for _ in range(6):
        clock.now += 2.0
        plans.append(guard.check([TP0, TP1], {TP0: 40, TP1: 7}, {TP0: 90, TP1: 7}))
    assert plans[-1].seek == [TP0] and plans[-1].escalate == []
    verdict = readiness.verdict()
    assert not verdict.ready
    assert "events[0] at offset 40, 50 behind" in verdict.failing[STALL]
    assert "events[1]" not in verdict.failing[STALL]
    guard.took([TP0], "seek")
    for _ in range(5):
        clock.now += 2.0
        plan = guard.check([TP0, TP1], {TP0: 40, TP1: 7}, {TP0: 95, TP1: 7})
    assert plan.escalate == [TP0] and plan.seek == []
    clock.now += 2.0
    guard.check([TP0, TP1], {TP0: 41, TP1: 7}, {TP0: 95, TP1: 7})
    assert not readiness.ready  # one record is not progress with 54 waiting
    clock.now += 2.0
    guard.check([TP0, TP1], {TP0: 95, TP1: 7}, {TP0: 95, TP1: 7})
    assert readiness.ready


@pytest.mark.parametrize("condition", [BROKER, DELIVERY, SCORING])
def test_guard_judges_no_stall_while_another_condition_explains_it(condition: str) -> None:
    guard, readiness, _, clock = _guard()
    readiness.set(condition, False, "held")
    for _ in range(30):
        clock.now += 2.0
        assert not guard.check([TP0], {TP0: 0}, {TP0: 100})
    assert STALL not in readiness.verdict().failing
    readiness.set(condition, True)
    plans = []
    for _ in range(6):
        clock.now += 2.0
        plans.append(guard.check([TP0], {TP0: 0}, {TP0: 100}))
    assert [plan.seek for plan in plans if plan] == [[TP0]]


# --- ahead of a stall: the broker's partition lookups against the fetch wait -----------------


def test_lookup_watch_fires_after_rounds_in_a_row_above_half_the_wait() -> None:
    watch = LookupWatch(rounds=3, share=0.5)
    assert not watch.observe(0.001, 4, 25)  # the baseline: 1 ms per partition
    assert not watch.observe(0.003, 4, 25)  # 4 x 2 ms = 8 ms <= 12.5
    assert not watch.observe(0.005, 4, 25)  # 16 ms > 12.5: 1
    assert not watch.observe(0.006, 4, 25)  # 2
    assert not watch.observe(0.002, 4, 25)  # back under: the streak restarts
    assert not watch.observe(0.006, 4, 25)
    assert not watch.observe(0.006, 4, 25)
    assert watch.observe(0.006, 4, 25)  # third in a row
    assert not watch.observe(0.006, 4, 100)  # 20 ms <= 50 with the raised wait


def test_lookup_watch_never_fires_when_lookups_do_not_grow() -> None:
    watch = LookupWatch()
    for i in range(200):  # a far broker: 40 ms round trips, up to 5 ms of jitter, 50 partitions
        assert not watch.observe(0.040 + 0.001 * (i % 6), 50, 25)


def test_guard_raises_the_wait_ahead_of_a_stall_and_shows_it() -> None:
    guard, _, metrics, _ = _guard()
    assert metrics.registry.get_sample_value("churn_fetch_wait_ms") == 25
    assert guard.ahead([(0.001, 4), (0.002, 4)]) is None
    assert guard.ahead([(0.006, 4), (0.006, 4)]) is None
    assert guard.ahead([(0.006, 4)]) == 100
    assert guard.fetch_wait.current == 100
    assert metrics.registry.get_sample_value("churn_fetch_wait_ms") == 100
    assert guard.ahead([(0.05, 4)] * 3) == 400  # the cap of this guard
    assert guard.ahead([(0.5, 4)] * 3) is None


def test_a_partition_long_from_the_first_round_shows_beside_the_fastest() -> None:
    """Timed one by one, the slowest partition is compared with the fastest, not with itself."""
    averaged, per_partition = LookupWatch(), LookupWatch()
    said_averaged = [averaged.observe(0.006, 4, 25) for _ in range(5)]
    said_timed = [per_partition.observe(0.020, 4, 25, fastest_s=0.001) for _ in range(3)]
    assert not any(said_averaged)  # the same slow lookup every round: no growth seen
    assert said_timed == [False, False, True]  # 4 x 19 ms > half of 25 ms, three rounds in a row
    assert per_partition.baseline_s == 0.001
