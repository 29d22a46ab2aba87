"""Gated retraining: the last-seen data set, the window split, and the gate's decisions in the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer

from cli.retrain import parse_duration
from models.registry import ModelRegistry
from producer.events import frame_rows
from schemas.features import FEATURES, TARGET
from training.retrain import RetrainConfig, SeenEvent, SeenOutcome, last_seen, retrain, split_window
from training.run import TrainConfig, train
from training.synthetic import generate

FAST = {"candidates": ["logistic_regression"], "cv_folds": 2}


def _features(tenure: int) -> dict[str, Any]:
    row = next(frame_rows(generate(1, seed=1)))
    return {**{k: row[k] for k in FEATURES}, "tenure": tenure}


def test_last_seen_takes_the_latest_event_at_or_before_the_latest_outcome() -> None:
    events = [
        SeenEvent("a", 10, _features(1)),
        SeenEvent("a", 20, _features(2)),  # last seen before the outcome
        SeenEvent("a", 40, _features(3)),  # after the outcome: would leak it
        SeenEvent("b", 5, _features(4)),
        SeenEvent("c", 5, _features(5)),  # no outcome: not labelled
        SeenEvent("d", 50, _features(6)),  # only after its outcome: nothing to learn from
    ]
    outcomes = [
        SeenOutcome("a", False, 15),
        SeenOutcome("a", True, 30),  # the latest outcome counts
        SeenOutcome("b", False, 8),
        SeenOutcome("d", True, 45),
    ]
    frame = last_seen(events, outcomes)
    assert frame["customer_id"].tolist() == ["b", "a"]  # ordered by observed_at
    assert frame["tenure"].tolist() == [4, 2]
    assert frame[TARGET].tolist() == [0, 1]
    assert frame["observed_at"].tolist() == [8, 30]


def test_the_window_is_the_latest_share_by_outcome_time() -> None:
    frame = pd.DataFrame({"customer_id": list("abcdefghij"), "observed_at": [9, 1, 8, 2, 7, 3, 6, 4, 5, 0]})
    train_rows, window = split_window(frame, 0.3)
    assert sorted(window["observed_at"]) == [7, 8, 9]
    assert len(train_rows) == 7 and train_rows["observed_at"].max() < window["observed_at"].min()


def _live_frame(n: int, seed: int, shuffle: bool = False, keep_last: int = 0) -> pd.DataFrame:
    """``n`` customers observed a second apart; ``shuffle`` scrambles labels but the last ``keep_last``."""
    frame = generate(n, seed=seed)
    if shuffle:
        head = n - keep_last
        labels = frame[TARGET].to_numpy().copy()
        labels[:head] = np.random.default_rng(seed).permutation(labels[:head])
        frame[TARGET] = labels
    frame["observed_at"] = np.arange(n, dtype=float) + 1e9
    return frame


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A store whose champion learnt from shuffled labels, and one whose champion is sound."""
    root = tmp_path_factory.mktemp("retrain")
    out = {}
    for name, shuffle in (("weak", True), ("sound", False)):
        csv = root / f"{name}.csv"
        _live_frame(1000, seed=3, shuffle=shuffle).drop(columns=["observed_at"]).to_csv(csv, index=False)
        train(TrainConfig(data=csv, store=root / name, plots=False, calibrate=False, **FAST))  # type: ignore[arg-type]
        out[name] = root / name
    return out


def test_a_better_model_is_promoted_with_its_evidence(stores: dict[str, Path]) -> None:
    registry = ModelRegistry(stores["weak"])
    champion = registry.current()
    config = RetrainConfig(min_gain=0.02, min_pairs=200, n_boot=200, **FAST)  # type: ignore[arg-type]
    result = retrain(_live_frame(1500, seed=4), registry, config, source={"events_topic": "e"})
    assert result.decision == "promoted", result.reason
    assert registry.current() == result.version != champion
    assert registry.challenger() is None  # promoted: no longer the challenger
    entries = registry.decisions()
    promote = next(d for d in entries if d["action"] == "promote" and d["version"] == result.version)
    evidence = promote["evidence"]
    assert evidence["rows"] == {"labelled": 1500, "train": 1200, "window": 300}
    assert evidence["comparison"]["ci_low"] > 0 and evidence["gate"]["passed"]
    assert evidence["champion"] == champion and evidence["source"] == {"events_topic": "e"}
    assert evidence["window"]["from"] > evidence["train_window"]["to"]
    assert [d["action"] for d in entries[-3:]] == ["challenger_set", "promote", "challenger_clear"]


def test_a_worse_model_stays_challenger_and_the_refusal_is_recorded(stores: dict[str, Path]) -> None:
    registry = ModelRegistry(stores["sound"])
    champion = registry.current()
    config = RetrainConfig(min_gain=0.0, min_pairs=200, n_boot=200, **FAST)  # type: ignore[arg-type]
    live = _live_frame(1500, seed=5, shuffle=True, keep_last=300)  # the training rows' labels are noise
    result = retrain(live, registry, config, source={})
    assert result.decision == "kept_challenger"
    assert registry.current() == champion
    assert registry.challenger() == result.version
    last = registry.decisions()[-1]
    assert (last["action"], last["version"]) == ("retrain_kept_challenger", result.version)
    assert last["evidence"]["comparison"]["difference"] < 0 and not last["evidence"]["gate"]["passed"]


def test_too_little_data_trains_nothing_and_says_so(stores: dict[str, Path]) -> None:
    registry = ModelRegistry(stores["sound"])
    versions = registry.versions()
    result = retrain(_live_frame(100, seed=6), registry, RetrainConfig(), source={})
    assert result.decision == "skipped" and "training rows" in result.reason
    assert registry.versions() == versions
    assert registry.decisions()[-1]["action"] == "retrain_skipped"


def test_what_asked_for_a_run_is_in_its_evidence(stores: dict[str, Path]) -> None:
    registry = ModelRegistry(stores["sound"])
    alert = {"alertname": "ChurnPredictionDrift", "status": "firing", "labels": {"instance": "scorer:6066"}}
    trigger = [{"source": "alert", "received_at": "2026-12-02T10:00:00+00:00", "alerts": [alert]}]
    retrain(_live_frame(100, seed=6), registry, RetrainConfig(), source={}, trigger=trigger)
    assert registry.decisions()[-1]["evidence"]["trigger"] == trigger
    retrain(_live_frame(100, seed=6), registry, RetrainConfig(), source={})
    assert "trigger" not in registry.decisions()[-1]["evidence"]


def test_schedule_durations() -> None:
    assert (
        parse_duration("24h") == 86400 and parse_duration("30m") == 1800 and parse_duration("1.5d") == 129600
    )
    for bad in ("24", "h", "0.5s", "-1h", "1w"):
        with pytest.raises(typer.BadParameter):
            parse_duration(bad)
