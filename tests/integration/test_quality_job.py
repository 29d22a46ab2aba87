"""`churn quality` on the embedded broker: the join, its dead letters, and a restart that loses nothing.

Predictions and outcomes are produced straight to the job's topics (the scorer is not
needed to test the join); the job runs as a real `churn quality` process. Its tables are
Faust tables backed by changelog topics: after a SIGTERM or a SIGKILL and a restart, the
joined state — labelled pairs per version, their metrics, the predictions and outcomes
held — must be exactly what it was, with the in-memory store (rebuilt from the
changelogs) and with RocksDB (on disk, topped up from the changelogs).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from sklearn.metrics import roc_auc_score

from config.settings import Settings
from devstack.ports import free_port
from devstack.processes import QualityProcess
from models.manifests import served_roc_auc
from models.registry import ModelRegistry
from schemas.predictions import prediction_payloads
from tests.support.bad_records import bad_records
from tests.support.kafka_tools import KafkaTools

pytestmark = pytest.mark.integration


@pytest.fixture
def version(model_store: Path) -> str:
    """The promoted version of the test model store: its manifest gives the training ROC AUC."""
    current = ModelRegistry(model_store).current()
    assert current is not None
    return current


@pytest.fixture
def quality_topics(kafka: KafkaTools) -> dict[str, str]:
    names = {name: kafka.unique(f"q-{name}") for name in ("predictions", "shadow", "outcomes", "dlq")}
    kafka.create_topics(names.values(), partitions=4)
    return names


StartQuality = Callable[..., QualityProcess]


@pytest.fixture
def start_quality(
    kafka_bootstrap: str, model_store: Path, quality_topics: dict[str, str], kafka: KafkaTools, tmp_path: Path
) -> Iterator[StartQuality]:
    """Start `churn quality` processes of one app id (one at a time); all stopped at the end."""
    app_id = kafka.unique("quality")
    started: list[QualityProcess] = []

    def start(store: str = "memory://") -> QualityProcess:
        settings = Settings(
            kafka_bootstrap_servers=kafka_bootstrap,
            model_store=model_store,
            predictions_topic=quality_topics["predictions"],
            shadow_predictions_topic=quality_topics["shadow"],
            outcomes_topic=quality_topics["outcomes"],
            outcomes_dlq_topic=quality_topics["dlq"],
            quality_app_id=app_id,
            quality_web_port=free_port(),
            quality_store=store,  # type: ignore[arg-type]
            quality_data_dir=tmp_path / "quality-data",
            quality_interval_s=0.5,
            quality_outcome_grace_s=600,
            topic_partitions=4,
        )
        env = settings.child_env(
            *("predictions_topic", "shadow_predictions_topic", "outcomes_topic", "outcomes_dlq_topic"),
            *(
                "quality_app_id",
                "quality_web_port",
                "quality_store",
                "quality_data_dir",
                "quality_interval_s",
            ),
            *("quality_outcome_grace_s", "topic_partitions"),
        )
        process = QualityProcess(env, tmp_path / f"quality-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        if process.running():
            process.kill()


def _predictions(n: int, seed: int, version: str, start: int = 0) -> tuple[list, list[bool]]:  # type: ignore[type-arg]
    """``n`` prediction records (key, value) and the outcome each customer will get (drawn from p)."""
    rng = random.Random(seed)
    customers = [f"cust-{seed}-{i}" for i in range(start, start + n)]
    probabilities = [rng.random() for _ in customers]
    churned = [rng.random() < p for p in probabilities]
    event_time = datetime.now(UTC) - timedelta(minutes=5)
    payloads = prediction_payloads(
        [f"e-{c}" for c in customers],
        customers,
        [event_time] * n,
        probabilities,
        0.4,
        version,
        datetime.now(UTC),
    )
    return [(c.encode(), orjson.dumps(p)) for c, p in zip(customers, payloads, strict=True)], churned


def _outcomes(records: list, churned: list[bool]) -> list[tuple[bytes, bytes]]:  # type: ignore[type-arg]
    observed_at = datetime.now(UTC).isoformat()
    return [
        (key, orjson.dumps({"customer_id": key.decode(), "churned": label, "observed_at": observed_at}))
        for (key, _), label in zip(records, churned, strict=True)
    ]


def _wait_for(quality: QualityProcess, name: str, value: float, timeout: float = 90.0, **labels: str) -> None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        quality._check_alive()
        try:
            seen = quality.metric(name, **labels)
        except OSError:
            seen = None
        if seen == value:
            return
        time.sleep(0.25)
    raise AssertionError(f"{name}{labels} is {seen}, expected {value}\n{quality.tail()}")


SNAPSHOT = (
    "churn_live_labelled",
    "churn_live_roc_auc",
    "churn_live_brier",
    "churn_live_precision",
    "churn_live_recall",
    "churn_quality_predictions_tracked",
    "churn_quality_outcomes_pending",
    "churn_model_training_roc_auc",
)


def _snapshot(quality: QualityProcess) -> dict[str, float]:
    return {name: quality.metric(name) for name in SNAPSHOT}


@pytest.mark.parametrize(
    ("store", "stop"),
    [("memory://", "SIGTERM"), ("memory://", "SIGKILL"), ("rocksdb://", "SIGKILL")],
)
def test_a_restart_loses_no_joined_state(
    kafka: KafkaTools,
    quality_topics: dict[str, str],
    start_quality: StartQuality,
    version: str,
    store: str,
    stop: str,
) -> None:
    n = 1500
    records, churned = _predictions(n, seed=3, version=version)
    shadow, _ = _predictions(300, seed=3, version="challenger-v2")  # the same customers' first 300
    kafka.produce(quality_topics["predictions"], records)
    kafka.produce(quality_topics["shadow"], shadow, headers=[("role", b"challenger")])
    quality = start_quality(store)
    quality.wait_ready(timeout=90)
    kafka.produce(quality_topics["outcomes"], _outcomes(records, churned))
    _wait_for(quality, "churn_live_labelled", n, model_version=version, role="champion")
    _wait_for(quality, "churn_live_labelled", 300, model_version="challenger-v2", role="challenger")
    _wait_for(quality, "churn_quality_predictions_tracked", n + 300)
    expected_auc = roc_auc_score(churned, [orjson.loads(v)["churn_probability"] for _, v in records])
    assert quality.metric("churn_live_roc_auc", model_version=version) == pytest.approx(
        expected_auc, abs=1e-12
    )
    training = ModelRegistry(quality.env["CHURN_MODEL_STORE"]).manifest(version)
    assert quality.metric("churn_model_training_roc_auc", model_version=version) == served_roc_auc(training)
    before = _snapshot(quality)

    if stop == "SIGTERM":
        assert quality.stop(timeout=60) == 0, quality.tail()
    else:
        quality.kill()  # no clean-up: uncommitted input is read again after the restart
    again = start_quality(store)
    again.wait_ready(timeout=120)
    _wait_for(again, "churn_live_labelled", n, model_version=version, role="champion")
    time.sleep(1.5)  # any record read again has been applied and the metrics refreshed
    assert _snapshot(again) == before, again.tail()

    # It carries on where it stopped: new outcomes are joined, none counted twice.
    more, more_churned = _predictions(200, seed=3, version=version, start=n)
    kafka.produce(quality_topics["predictions"], more)
    kafka.produce(quality_topics["outcomes"], _outcomes(more, more_churned))
    _wait_for(again, "churn_live_labelled", n + 200, model_version=version, role="champion")
    all_probabilities = [orjson.loads(v)["churn_probability"] for _, v in records + more]
    auc = roc_auc_score(churned + more_churned, all_probabilities)
    assert again.metric("churn_live_roc_auc", model_version=version) == pytest.approx(auc, abs=1e-12)
    assert again.metric("churn_outcomes_unmatched_total") == 0


def test_unreadable_records_go_to_the_dead_letter_topic_and_the_rest_is_joined(
    kafka: KafkaTools, quality_topics: dict[str, str], start_quality: StartQuality, version: str
) -> None:
    quality = start_quality()
    quality.wait_ready(timeout=90)
    records, churned = _predictions(20, seed=4, version=version)
    kafka.produce(quality_topics["predictions"], [*records, (b"x", b"{not a prediction")])
    bad = [
        (b"a", b""),
        (b"b", b"[1]"),
        (b"c", b'{"customer_id": "c", "churned": "perhaps"}'),
        (b"d", b'{"customer_id": "d"}'),
        *[(record.key, record.value) for record in bad_records()[:8]],
    ]
    good = _outcomes(records, churned)
    kafka.produce(quality_topics["outcomes"], [*bad[:6], *good[:10], *bad[6:], *good[10:]])
    _wait_for(quality, "churn_live_labelled", 20, model_version=version, role="champion")
    letters = kafka.consume(quality_topics["dlq"], len(bad) + 1, timeout=60, idle=2)
    assert len(letters) == len(bad) + 1
    by_source = {(m.headers["source_topic"].decode(), m.value) for m in letters}
    assert (quality_topics["predictions"], b"{not a prediction") in by_source
    types = {m.value: m.headers["error_type"].decode() for m in letters}
    assert types[b"[1]"] == "not_an_object"
    assert types[b'{"customer_id": "c", "churned": "perhaps"}'] == "invalid_value"
    assert types[b'{"customer_id": "d"}'] == "missing_field"
    for message in letters:
        assert message.headers["error_message"]
        assert int(message.headers["source_offset"]) >= 0
    dead = quality.metric("churn_quality_dead_letters_total")
    assert dead == len(bad) + 1
