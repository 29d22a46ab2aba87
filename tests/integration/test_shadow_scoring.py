"""Shadow scoring in a running `churn score`, both engines, on the embedded broker: a challenger set
while the scorer runs gets its predictions on the shadow topic (header role=challenger, its own
model_version), the champion's predictions are unchanged, and clearing the pointer stops it; and
`churn models compare` shows a challenger trained on shuffled labels worse on the live outcomes."""

from __future__ import annotations

import itertools
import json
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest
from mlflow import MlflowClient
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from cli.main import app
from models.registry import ModelRegistry
from producer.events import stamp, synthetic_events, synthetic_labelled_rows
from producer.outcomes import outcome_payload
from tests.support.kafka_tools import KafkaTools
from tests.support.scorer_process import ScorerProcess, scorer_env
from training.data import to_telco_csv
from training.run import TrainConfig, train
from training.synthetic import generate

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def challenger_store(model_store: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The session store plus one more version, trained on other rows and not promoted."""
    path = tmp_path_factory.mktemp("shadow") / "store"
    shutil.copytree(model_store, path)
    outcome = train(
        TrainConfig(
            store=path,
            candidates=["logistic_regression"],
            plots=False,
            rows=1000,
            seed=9,
            promote=False,
            cv_folds=2,
        )
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


@pytest.fixture(scope="module")
def worse_store(model_store: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The session store plus a version trained on shuffled labels (ROC AUC ≈ 0.5), not promoted."""
    root = tmp_path_factory.mktemp("worse")
    frame = generate(1500, seed=13)
    frame["churn"] = np.random.default_rng(0).permutation(frame["churn"].to_numpy())
    to_telco_csv(frame, root / "shuffled.csv")
    shutil.copytree(model_store, root / "store")
    outcome = train(
        TrainConfig(
            data=root / "shuffled.csv",
            store=root / "store",
            candidates=["logistic_regression"],
            plots=False,
            promote=False,
            calibrate=False,
            cv_folds=2,
        )
    )
    return root / "store", outcome.version


def test_compare_shows_a_worse_challenger_worse_on_live_outcomes(
    kafka_bootstrap: str,
    kafka: KafkaTools,
    topics: dict[str, str],
    worse_store: tuple[Path, str],
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    shutil.copytree(worse_store[0], store)
    registry = ModelRegistry(store)
    champion, challenger = registry.current(), worse_store[1]
    registry.set_challenger(challenger)
    topics["shadow"], topics["outcomes"] = kafka.unique("shadow"), kafka.unique("outcomes")
    kafka.create_topics([topics["shadow"], topics["outcomes"]], partitions=4)
    env = scorer_env(kafka_bootstrap, store, topics, kafka.unique("scorer"))
    env["CHURN_SHADOW_PREDICTIONS_TOPIC"] = topics["shadow"]
    env["CHURN_OUTCOMES_TOPIC"] = topics["outcomes"]
    scorer = ScorerProcess(env, tmp_path / "scorer.log", engine="native")
    try:
        scorer.wait_metrics()
        rows = [(stamp(r), y) for r, y in itertools.islice(synthetic_labelled_rows(seed=17), 1500)]
        kafka.produce(topics["events"], [(r["customer_id"].encode(), orjson.dumps(r)) for r, _ in rows])
        predictions = kafka.consume(topics["predictions"], len(rows), timeout=60)
        assert len(predictions) == len(rows)
        assert len(kafka.consume(topics["shadow"], len(rows), timeout=60)) == len(rows)
    finally:
        assert scorer.stop() == 0
    later = datetime.now(UTC) + timedelta(seconds=1)
    outcomes = [orjson.dumps(outcome_payload(r["customer_id"], churned, later)) for r, churned in rows]
    kafka.produce(
        topics["outcomes"], [(r["customer_id"].encode(), o) for (r, _), o in zip(rows, outcomes, strict=True)]
    )

    result = CliRunner().invoke(
        app, ["models", "compare", "--json", "--gate", "0", "--idle", "2", "--bootstrap", "500"], env=env
    )
    assert result.exit_code == 1, result.output  # compared, and the gate refuses the challenger
    summary = json.loads(result.output)
    assert (summary["champion"], summary["challenger"]) == (champion, challenger)
    assert summary["labelled"] == {"champion": len(rows), "challenger": len(rows)}
    c = summary["comparison"]
    label = {r["customer_id"]: churned for r, churned in rows}
    payloads = [orjson.loads(p.value or b"") for p in predictions]
    expected = roc_auc_score(
        [label[p["customer_id"]] for p in payloads], [p["churn_probability"] for p in payloads]
    )
    assert c["roc_auc_a"] == pytest.approx(expected, abs=1e-6)  # the join labels every prediction, exactly
    assert c["roc_auc_a"] > 0.7 and c["roc_auc_b"] < 0.6
    assert c["ci_high"] < 0 and c["n"] == len(rows)
    assert not summary["gate"]["promote"]


def test_retrain_promotes_a_better_model_and_the_running_scorer_switches_to_it(
    kafka_bootstrap: str,
    kafka: KafkaTools,
    topics: dict[str, str],
    worse_store: tuple[Path, str],
    tmp_path: Path,
) -> None:
    """The champion learnt from shuffled labels; `churn retrain` on live events and outcomes beats it.

    One engine: both follow a promotion the same way (test_a_challenger_set_and_cleared... and
    test_scorer_model_reload show each engine following the registry's pointers)."""
    store = tmp_path / "store"
    shutil.copytree(worse_store[0], store)
    registry = ModelRegistry(store)
    registry.promote(worse_store[1], reason="a weak champion for the test")
    topics["outcomes"] = kafka.unique("outcomes")
    kafka.create_topics([topics["outcomes"]], partitions=4)
    env = scorer_env(kafka_bootstrap, store, topics, kafka.unique("scorer"))
    env["CHURN_MODEL_POLL_INTERVAL_S"] = "0.5"
    env["CHURN_OUTCOMES_TOPIC"] = topics["outcomes"]
    rows = [(stamp(r), y) for r, y in itertools.islice(synthetic_labelled_rows(seed=23), 2000)]
    kafka.produce(topics["events"], [(r["customer_id"].encode(), orjson.dumps(r)) for r, _ in rows])
    start = datetime.now(UTC) + timedelta(seconds=1)
    kafka.produce(
        topics["outcomes"],
        [
            (
                r["customer_id"].encode(),
                orjson.dumps(outcome_payload(r["customer_id"], y, start + timedelta(seconds=i / 20))),
            )
            for i, (r, y) in enumerate(rows)
        ],
    )
    scorer = ScorerProcess(env, tmp_path / "scorer.log", engine="native")
    try:
        scorer.wait_metrics()
        args = [
            "retrain",
            "--json",
            "--gate",
            "0.02",
            "--candidate",
            "logistic_regression",
            "--cv-folds",
            "2",
        ]
        result = CliRunner().invoke(app, [*args, "--bootstrap", "300", "--idle", "2"], env=env)
        assert result.exit_code == 0, result.output
        # The JSON line, among the training's log lines.
        decision = json.loads(next(x for x in result.output.splitlines() if x.startswith('{"decision"')))
        assert decision["decision"] == "promoted", decision["reason"]
        evidence = decision["evidence"]
        assert evidence["rows"] == {"labelled": 2000, "train": 1600, "window": 400}
        assert evidence["comparison"]["ci_low"] > 0.02 or evidence["comparison"]["difference"] >= 0.02
        new = decision["version"]
        assert registry.current() == new
        _wait_for(scorer, "the promoted version", lambda: scorer.metric("churn_model_info", version=new) == 1)
        more = synthetic_events(100, seed=31)
        kafka.produce(topics["events"], [(e["customer_id"].encode(), orjson.dumps(e)) for e in more])
        scored = kafka.consume(topics["predictions"], len(rows) + len(more), timeout=60)
        versions = {
            p["event_id"]: p["model_version"] for p in map(lambda r: orjson.loads(r.value or b""), scored)
        }
        assert {versions[e["event_id"]] for e in more} == {new}
        assert (
            registry.decisions()[-2]["action"] == "promote"
            and registry.decisions()[-2]["evidence"]["gate"]["passed"]
        )
    finally:
        assert scorer.stop() == 0


def test_retrain_every_runs_on_schedule_and_records_each_decision(
    kafka_bootstrap: str, model_store: Path, tmp_path: Path
) -> None:
    """Two scheduled runs on empty topics: each records why nothing was trained, and the loop ends;
    each is an MLflow run of its own holding the decision."""
    store = tmp_path / "store"
    shutil.copytree(model_store, store)
    (store / "decisions.jsonl").unlink(missing_ok=True)
    env = {
        "CHURN_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CHURN_MODEL_STORE": str(store),
        "CHURN_EVENTS_TOPIC": f"absent-events-{time.time_ns()}",
        "CHURN_OUTCOMES_TOPIC": f"absent-outcomes-{time.time_ns()}",
        "CHURN_MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri(),
    }
    started = time.monotonic()
    result = CliRunner().invoke(app, ["retrain", "--every", "1s", "--runs", "2", "--idle", "0.5"], env=env)
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 1.0
    decisions = ModelRegistry(store).decisions()
    assert [d["action"] for d in decisions] == ["retrain_skipped", "retrain_skipped"]
    assert decisions[0]["evidence"]["rows"]["labelled"] == 0
    client = MlflowClient(tracking_uri=env["CHURN_MLFLOW_TRACKING_URI"])
    runs = [client.get_run(d["evidence"]["mlflow_run_id"]) for d in decisions]
    assert len({r.info.run_id for r in runs}) == 2
    for run, entry in zip(runs, decisions, strict=True):
        assert run.info.status == "FINISHED" and run.data.tags["churn.retrain.decision"] == "skipped"
        assert f"retrain: {run.data.tags['churn.retrain.reason']}" == entry["reason"]
