"""Crash safety: steady production while `churn score` workers are SIGKILLed; nothing is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.chaos import run_chaos
from config.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _settings(kafka_bootstrap: str, model_store: Path) -> Settings:
    return Settings().with_overrides(
        kafka_bootstrap_servers=kafka_bootstrap, model_store=model_store, topic_partitions=4
    )


def test_three_sigkills_and_restarts_lose_no_event(
    kafka_bootstrap: str, model_store: Path, tmp_path: Path
) -> None:
    report = run_chaos(
        _settings(kafka_bootstrap, model_store), tmp_path, events=20_000, rate=1500.0, kills=3, workers=1
    )
    print(f"chaos: {report.as_dict()}")
    assert report.produced == 20_000
    assert len(report.kill_times) == 3
    assert report.missing == 0, f"{report.missing} events have no prediction"
    assert report.dead_letters == 0, "valid events were dead-lettered"
    assert report.duplicates < 20_000  # reported; at-least-once re-scores only uncommitted work


def test_the_survivor_of_two_workers_takes_over_and_scores_everything(
    kafka_bootstrap: str, model_store: Path, tmp_path: Path
) -> None:
    report = run_chaos(
        _settings(kafka_bootstrap, model_store),
        tmp_path,
        events=10_000,
        rate=1000.0,
        kills=1,
        workers=2,
        restart=False,
    )
    print(f"chaos: {report.as_dict()}")
    assert len(report.kill_times) == 1
    assert report.missing == 0, f"{report.missing} events have no prediction"
    assert report.dead_letters == 0
