from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.kafka_tools import KafkaTools
from tests.support.scorer_process import ScorerProcess, scorer_env


@pytest.fixture
def topics(kafka: KafkaTools) -> dict[str, str]:
    """Fresh events / predictions / DLQ topics (4 partitions) for one test."""
    names = {
        "events": kafka.unique("events"),
        "predictions": kafka.unique("predictions"),
        "dlq": kafka.unique("dlq"),
    }
    kafka.create_topics(names.values(), partitions=4)
    return names


@pytest.fixture(params=["faust", "native"])
def engine(request: pytest.FixtureRequest) -> str:
    """Each scorer test runs once per ``churn score --engine``."""
    return str(request.param)


@pytest.fixture
def start_scorer(
    kafka_bootstrap: str,
    model_store: Path,
    topics: dict[str, str],
    tmp_path: Path,
    kafka: KafkaTools,
    engine: str,
) -> Iterator[Callable[..., ScorerProcess]]:
    """Start ``churn score --engine ENGINE`` processes in one fresh consumer group; all stopped at the end."""
    group = kafka.unique("scorer")
    started: list[ScorerProcess] = []

    def start(*extra: str) -> ScorerProcess:
        env = scorer_env(kafka_bootstrap, model_store, topics, group)
        process = ScorerProcess(env, tmp_path / f"scorer-{len(started)}.log", *extra, engine=engine)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.running():
            process.kill()
