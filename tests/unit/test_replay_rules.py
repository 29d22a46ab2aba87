"""Which dead letters `churn dlq replay` sends back, and how it reads a range."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from producer.replay import (
    FAILED_AGAIN,
    MAX_REPLAYS,
    NOT_SELECTED,
    SUPERSEDED,
    TRUNCATED,
    Bound,
    ReplayRules,
    decide,
    default_group,
    replay_count_of,
)

HERE = "dlq:0:7"


def _letter(error_type: str = "out_of_range", count: int | None = None, **extra: bytes) -> dict[str, bytes]:
    headers = {"error_type": error_type.encode(), **extra}
    if count is not None:
        headers["replay_count"] = str(count).encode()
    return headers


def test_a_first_time_dead_letter_goes_back() -> None:
    assert decide(_letter(), HERE, ReplayRules(), set()) is None


def test_only_selected_error_types_go_back() -> None:
    rules = ReplayRules(error_types=frozenset({"unknown_category"}))
    assert decide(_letter("out_of_range"), HERE, rules, set()) == NOT_SELECTED
    assert decide(_letter("unknown_category"), HERE, rules, set()) is None


def test_a_record_that_failed_again_after_a_replay_goes_back_only_with_again() -> None:
    assert decide(_letter(count=1), HERE, ReplayRules(), set()) == FAILED_AGAIN
    assert decide(_letter(count=1), HERE, ReplayRules(again=True), set()) is None
    assert decide(_letter(count=2), HERE, ReplayRules(again=True), set()) is None


def test_the_replay_limit_is_exact_and_force_overrides_it() -> None:
    rules = ReplayRules(max_replays=3, again=True)
    assert decide(_letter(count=2), HERE, rules, set()) is None
    assert decide(_letter(count=3), HERE, rules, set()) == MAX_REPLAYS
    assert decide(_letter(count=3), HERE, ReplayRules(max_replays=3, again=True, force=True), set()) is None
    assert decide(_letter(count=9), HERE, ReplayRules(max_replays=3), set()) == MAX_REPLAYS


def test_a_truncated_dead_letter_never_goes_back() -> None:
    truncated = _letter(truncated=b"true")
    assert decide(truncated, HERE, ReplayRules(force=True, again=True), set()) == TRUNCATED


def test_a_dead_letter_whose_record_failed_again_later_in_the_range_is_superseded() -> None:
    assert decide(_letter(), HERE, ReplayRules(again=True), {HERE}) == SUPERSEDED
    assert decide(_letter(), HERE, ReplayRules(again=True), {"dlq:0:8"}) is None


def test_replay_count_reads_the_header() -> None:
    assert replay_count_of({}) == 0
    assert replay_count_of({"replay_count": b"2"}) == 2
    assert replay_count_of({"replay_count": b"many"}) == 0
    assert replay_count_of({"replay_count": b"-4"}) == 0


def test_each_selection_keeps_its_own_progress() -> None:
    assert default_group([]) == "churn-dlq-replay"
    assert default_group(["b", "a", "b"]) == "churn-dlq-replay.a+b"


def test_bounds_are_offsets_or_times() -> None:
    assert Bound.parse("120") == Bound(offset=120)
    when = Bound.parse("2026-05-01T12:00:00Z")
    assert when.time_ms == int(datetime(2026, 5, 1, 12, tzinfo=UTC).timestamp() * 1000)
    assert Bound.parse("2026-05-01T12:00:00") == when  # no zone: UTC
    with pytest.raises(ValueError, match="offset or an ISO 8601 time"):
        Bound.parse("yesterday")


def test_a_bound_is_reached_at_its_offset_or_time_exactly() -> None:
    assert not Bound(offset=5).reached_by(4, 0)
    assert Bound(offset=5).reached_by(5, 0)
    assert not Bound(time_ms=1000).reached_by(0, 999)
    assert Bound(time_ms=1000).reached_by(0, 1000)
