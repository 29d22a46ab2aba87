"""The online-quality loop end to end: live ROC AUC converges to the offline figure of the same model.

Embedded broker, a real `churn score` (native engine), a real `churn quality` job and a real
Prometheus scraping it. `churn produce --outcomes` publishes 6,000 synthetic customers and,
for each, the outcome the generator drew. Once every prediction is labelled, the live ROC
AUC Prometheus holds for the model version must

* equal scikit-learn's ROC AUC of the same model on the same customers and labels (the
  join and the metric are exact), and
* lie within 0.02 of the model's ROC AUC on 20,000 other customers of the generator (the
  live figure converges to the offline one on >= 5,000 labelled predictions).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from config.settings import Settings
from devstack.ports import free_port
from devstack.processes import ChurnProcess, QualityProcess, ScorerProcess
from models.predictor import Predictor
from producer.events import synthetic_labelled_rows
from tests.support.kafka_tools import KafkaTools
from tests.support.prometheus import PrometheusServer
from training.synthetic import generate

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

CUSTOMERS = 6000
SEED = 29


def test_live_roc_auc_converges_to_the_offline_figure(
    kafka: KafkaTools,
    kafka_bootstrap: str,
    model_store: Path,
    predictor: Predictor,
    prometheus_server: Callable[..., PrometheusServer],
    tmp_path: Path,
) -> None:
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        model_store=model_store,
        events_topic=kafka.unique("loop-events"),
        predictions_topic=kafka.unique("loop-predictions"),
        dlq_topic=kafka.unique("loop-dlq"),
        outcomes_topic=kafka.unique("loop-outcomes"),
        outcomes_dlq_topic=kafka.unique("loop-outcomes-dlq"),
        shadow_predictions_topic=kafka.unique("loop-shadow"),
        scorer_app_id=kafka.unique("loop-scorer"),
        quality_app_id=kafka.unique("loop-quality"),
        scorer_web_port=free_port(),
        quality_web_port=free_port(),
        quality_window=CUSTOMERS,
        quality_interval_s=1.0,
        topic_partitions=4,
    )
    names = ("outcomes_topic", "outcomes_dlq_topic", "shadow_predictions_topic", "quality_app_id")
    names += (
        "scorer_web_port",
        "quality_web_port",
        "quality_window",
        "quality_interval_s",
        "topic_partitions",
    )
    env = settings.child_env(*names)
    scorer = ScorerProcess(env, tmp_path / "scorer.log", engine="native")
    quality = QualityProcess(env, tmp_path / "quality.log")
    started = [scorer, quality]
    try:
        scorer.wait_ready(timeout=90)
        quality.wait_ready(timeout=90)
        prom = prometheus_server(quality_targets=[f"127.0.0.1:{quality.web_port}"])
        produce = ["produce", "--count", str(CUSTOMERS), "--unlimited", "--seed", str(SEED)]
        produce += ["--outcomes", "--outcome-delay", "0.5"]
        producer = ChurnProcess(produce, env, tmp_path / "producer.log")
        started.append(producer)
        assert producer.process.wait(timeout=120) == 0, producer.tail()

        version = predictor.version
        labelled = f'churn_live_labelled{{job="churn-quality",model_version="{version}"}}'
        deadline = time.monotonic() + 150
        while float((prom.query(labelled) or [{"value": [0, "0"]}])[0]["value"][1]) != CUSTOMERS:
            assert time.monotonic() < deadline, f"{prom.query(labelled)}\n{quality.tail()}"
            quality._check_alive()
            time.sleep(1)
        live = prom.value(
            f'churn_live_roc_auc{{job="churn-quality",model_version="{version}",role="champion"}}'
        )
        training = prom.value(
            f'churn_model_training_roc_auc{{job="churn-quality",model_version="{version}"}}'
        )
    finally:
        for process in reversed(started):
            process.stop(timeout=30)

    rows = list(itertools.islice(synthetic_labelled_rows(seed=SEED), CUSTOMERS))
    same = roc_auc_score([label for _, label in rows], predictor.predict_batch([row for row, _ in rows]))
    other = generate(20_000, seed=SEED + 1000)
    offline = roc_auc_score(other["churn"], predictor.predict_frame(other))
    print(f"live ROC AUC {live:.4f} ({CUSTOMERS} labelled); offline {offline:.4f}; training {training:.4f}")
    assert live == pytest.approx(same, abs=1e-9)
    assert abs(live - offline) < 0.02
    assert np.isfinite(training)
