"""Shadow scoring in a running `churn score`, both engines, on the embedded broker: a challenger set
while the scorer runs gets its predictions on the shadow topic (header role=challenger, its own
model_version), the champion's predictions are unchanged, and clearing the pointer stops it."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from models.registry import ModelRegistry
from producer.events import synthetic_events
from tests.support.kafka_tools import KafkaTools
from tests.support.scorer_process import ScorerProcess, scorer_env
from training.run import TrainConfig, train

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def challenger_store(model_store: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The session store plus one more version, trained on other rows and not promoted."""
    path = tmp_path_factory.mktemp("shadow") / "store"
    shutil.copytree(model_store, path)
    outcome = train(
        TrainConfig(store=path, candidates=["spline_logistic"], plots=False, rows=1000, seed=9, promote=False)
    )
    return path, outcome.version


@pytest.fixture
def scorer(
    kafka_bootstrap: str,
    kafka: KafkaTools,
    topics: dict[str, str],
    challenger_store: tuple[Path, str],
    tmp_path: Path,
    engine: str,
) -> Iterator[ScorerProcess]:
    store = tmp_path / "store"
    shutil.copytree(challenger_store[0], store)
    topics["shadow"] = kafka.unique("shadow")
    kafka.create_topics([topics["shadow"]], partitions=4)
    env = scorer_env(kafka_bootstrap, store, topics, kafka.unique("scorer"))
    env["CHURN_MODEL_POLL_INTERVAL_S"] = "0.5"
    env["CHURN_SHADOW_PREDICTIONS_TOPIC"] = topics["shadow"]
    process = ScorerProcess(env, tmp_path / "scorer.log", engine=engine)
    yield process
    if process.running():
        process.kill()


def _wait_for(scorer: ScorerProcess, what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert scorer.running(), scorer.tail()
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{scorer.tail()}"
        time.sleep(0.2)


def test_a_challenger_set_and_cleared_live_scores_in_shadow_only(
    kafka: KafkaTools, topics: dict[str, str], scorer: ScorerProcess, challenger_store: tuple[Path, str]
) -> None:
    registry = ModelRegistry(scorer.env["CHURN_MODEL_STORE"])
    champion, challenger = registry.current(), challenger_store[1]
    scorer.wait_metrics()

    def produce(seed: int) -> set[str]:
        events = synthetic_events(200, seed=seed)
        kafka.produce(topics["events"], [(e["customer_id"].encode(), orjson.dumps(e)) for e in events])
        return {e["event_id"] for e in events}

    first = produce(1)
    registry.set_challenger(challenger, reason="integration test")
    _wait_for(
        scorer, "the challenger", lambda: scorer.metric("churn_challenger_info", version=challenger) == 1
    )
    second = produce(2)
    predictions = kafka.consume(topics["predictions"], 400, timeout=60)
    assert {orjson.loads(r.value or b"")["model_version"] for r in predictions} == {champion}
    assert {orjson.loads(r.value or b"")["event_id"] for r in predictions} == first | second
    assert all("role" not in r.headers for r in predictions)

    shadow = kafka.consume(topics["shadow"], len(second), timeout=60, idle=1.0)
    payloads = [orjson.loads(r.value or b"") for r in shadow]
    shadowed = {p["event_id"] for p in payloads}
    assert second <= shadowed <= first | second  # the challenger was loaded by the second round
    assert {p["model_version"] for p in payloads} == {challenger}
    assert all(r.headers.get("role") == b"challenger" for r in shadow)
    assert scorer.metric("churn_shadow_predictions_total", model_version=challenger) == len(shadow)

    registry.clear_challenger()
    _wait_for(scorer, "the challenger cleared", lambda: scorer.metric("churn_challenger_info") == 0)
    third = produce(3)
    assert len(kafka.consume(topics["predictions"], 600, timeout=60)) >= 600
    assert len(kafka.consume(topics["shadow"], len(shadow), timeout=10, idle=2.0)) == len(shadow)
    assert not third & shadowed
    assert scorer.stop() == 0
