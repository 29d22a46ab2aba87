"""Hot reload in a running `churn score`: promote, refuse a tampered version, roll back — all live;
and a scorer that starts while CURRENT cannot be loaded falls back to the last good version."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from models.registry import CURRENT_FILE, MODEL_FILE, ModelRegistry
from producer.events import synthetic_events
from tests.support.kafka_tools import KafkaTools
from tests.support.scorer_process import CHURN, ScorerProcess, scorer_env
from training.run import TrainConfig, train

pytestmark = pytest.mark.integration


@pytest.fixture
def store(model_store: Path, tmp_path: Path) -> Path:
    """A private copy of the session store plus two trained, not yet promoted versions."""
    path = tmp_path / "store"
    shutil.copytree(model_store, path)
    for seed in (7, 8):
        train(
            TrainConfig(
                store=path, candidates=["spline_logistic"], plots=False, rows=1500, seed=seed, promote=False
            )
        )
    return path


@pytest.fixture
def scorer(
    kafka_bootstrap: str, kafka: KafkaTools, topics: dict[str, str], store: Path, tmp_path: Path
) -> Iterator[ScorerProcess]:
    env = scorer_env(kafka_bootstrap, store, topics, kafka.unique("scorer"))
    env["CHURN_MODEL_POLL_INTERVAL_S"] = "0.5"
    process = ScorerProcess(env, tmp_path / "scorer.log")
    yield process
    if process.running():
        process.kill()


def _wait_for(scorer: ScorerProcess, condition: str, check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert scorer.running(), scorer.tail()
        assert time.monotonic() < deadline, f"timed out waiting for {condition}\n{scorer.tail()}"
        time.sleep(0.2)


def _score_round(kafka: KafkaTools, topics: dict[str, str], seed: int, done: dict[str, str]) -> set[str]:
    """Produce 300 events; return the model versions that scored them (and record them in ``done``)."""
    events = synthetic_events(300, seed=seed)
    kafka.produce(topics["events"], [(e["customer_id"].encode(), orjson.dumps(e)) for e in events])
    wanted = len(done) + len(events)
    predictions = kafka.consume(topics["predictions"], wanted, timeout=60, idle=1.0)
    for record in predictions:
        payload = orjson.loads(record.value or b"{}")
        done[payload["event_id"]] = payload["model_version"]
    ids = {e["event_id"] for e in events}
    assert ids <= set(done), f"{len(ids - set(done))} events of this round not scored"
    return {done[i] for i in ids}


def test_promote_tamper_and_rollback_take_effect_in_a_running_scorer(
    kafka: KafkaTools, topics: dict[str, str], store: Path, scorer: ScorerProcess
) -> None:
    registry = ModelRegistry(store)
    v1 = registry.current()
    v2, v3 = sorted(set(registry.versions()) - {v1})
    assert v1 is not None
    scorer.wait_metrics()
    done: dict[str, str] = {}

    assert _score_round(kafka, topics, 1, done) == {v1}

    # 1. A new promotion is picked up between batches, without a restart.
    registry.promote(v2)
    _wait_for(scorer, f"model {v2}", lambda: scorer.metric("churn_model_info", version=v2) == 1)
    assert _score_round(kafka, topics, 2, done) == {v2}

    # 2. CURRENT names a version whose artifact was damaged after promotion (truncated on disk):
    #    refused, counted once, and v2 keeps scoring.
    artifact = store / v3 / MODEL_FILE
    artifact.write_bytes(artifact.read_bytes()[:1000])
    (store / CURRENT_FILE).write_text(v3 + "\n", encoding="utf-8")
    _wait_for(scorer, "the refusal", lambda: scorer.metric("churn_model_reload_failures_total") == 1)
    assert _score_round(kafka, topics, 3, done) == {v2}
    time.sleep(1.5)  # three more polls: a refused version is not retried (nor counted) again
    assert scorer.metric("churn_model_reload_failures_total") == 1
    assert scorer.metric("churn_model_info", version=v2) == 1
    assert scorer.metric("churn_model_fallback") == 1  # serving v2, not CURRENT's v3
    assert scorer.tail(400).count("model_reload_refused") == 1

    # 3. `churn models rollback` refuses: CURRENT (v3, moved by hand) is not the last promotion
    #    (v2). Promoting v1 explicitly is followed live, and ends the fallback.
    refused = subprocess.run(
        [CHURN, "models", "rollback", "--store", str(store)], capture_output=True, text=True
    )
    assert refused.returncode == 1
    assert "churn models promote VERSION" in " ".join(refused.stderr.split())
    subprocess.run([CHURN, "models", "promote", v1, "--store", str(store)], check=True, capture_output=True)
    assert registry.current() == v1
    _wait_for(scorer, f"model {v1}", lambda: scorer.metric("churn_model_info", version=v1) == 1)
    assert scorer.metric("churn_model_fallback") == 0
    assert _score_round(kafka, topics, 4, done) == {v1}

    assert len(done) == 1200
    assert scorer.stop() == 0, scorer.tail()


def test_a_scorer_starting_while_current_is_broken_falls_back_to_the_last_good_version(
    kafka_bootstrap: str, kafka: KafkaTools, topics: dict[str, str], store: Path, tmp_path: Path
) -> None:
    """The finding: an unloadable CURRENT made a fresh scorer refuse to start."""
    registry = ModelRegistry(store)
    v1 = registry.current()
    v2 = sorted(set(registry.versions()) - {v1})[0]
    registry.promote(v2)  # history: v1, v2
    artifact = store / v2 / MODEL_FILE
    artifact.write_bytes(artifact.read_bytes()[:1000])  # then damaged on disk
    env = scorer_env(kafka_bootstrap, store, topics, kafka.unique("scorer"))
    scorer = ScorerProcess(env, tmp_path / "scorer.log")
    try:
        scorer.wait_metrics()
        assert scorer.metric("churn_model_fallback") == 1
        assert scorer.metric("churn_model_info", version=v1) == 1
        done: dict[str, str] = {}
        assert _score_round(kafka, topics, 5, done) == {v1}
        log = scorer.tail(400)
        assert f"model_fallback serving={v1} current={v2}" in log
        assert "model fallback:" in log  # and on the console
    finally:
        assert scorer.stop() == 0, scorer.tail()
