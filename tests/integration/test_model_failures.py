"""A model that fails, on a real broker and a real `churn score`, both engines.

Some records: only those are dead-lettered. All records: consuming pauses, the scorer
reports not-ready over HTTP, and it resumes (delivering the held batch) once a good
version is promoted. A resource error: the worker exits non-zero without committing, and
a restarted worker scores the batch.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from models.registry import ModelRegistry
from producer.events import synthetic_events
from schemas.dead_letters import DeadLetter
from tests.support.broken_model import save_broken_version
from tests.support.kafka_tools import Consumed, KafkaTools
from tests.support.scorer_process import ScorerProcess, scorer_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MARK = 1111  # the tenure the broken versions fail on (the load-time probes stay within 0-72)


@pytest.fixture
def store(model_store: Path, tmp_path: Path) -> Path:
    """A copy of the session's store, for the versions a test promotes."""
    return Path(shutil.copytree(model_store, tmp_path / "store"))


@pytest.fixture
def scorer_for(
    kafka_bootstrap: str, store: Path, topics: dict[str, str], kafka: KafkaTools, tmp_path: Path, engine: str
) -> Callable[..., ScorerProcess]:
    """Start ``churn score`` on ``store`` with extra CHURN_* settings; it can load the broken models."""
    group = kafka.unique("scorer")
    started: list[ScorerProcess] = []

    def start(**settings: str) -> ScorerProcess:
        env = scorer_env(kafka_bootstrap, store, topics, group)
        env.update({f"CHURN_{k.upper()}": v for k, v in settings.items()})
        env["CHURN_MODEL_POLL_INTERVAL_S"] = "1"
        env["PYTHONPATH"] = str(ROOT)  # tests.support.broken_model, pickled in the broken versions
        process = ScorerProcess(env, tmp_path / f"scorer-{len(started)}.log", engine=engine)
        started.append(process)
        return process

    yield start  # type: ignore[misc]
    for process in started:
        if process.running():
            process.kill()


def _records(events: list[dict[str, object]]) -> list[tuple[bytes, bytes]]:
    return [(str(e["customer_id"]).encode(), orjson.dumps(e)) for e in events]


def _ids(records: list[Consumed]) -> list[str]:
    return [orjson.loads(r.value or b"{}")["event_id"] for r in records]


def _letters(records: list[Consumed]) -> list[DeadLetter]:
    return [DeadLetter.from_headers(list(r.headers.items())) for r in records]


def test_only_the_records_the_model_fails_on_are_dead_lettered(
    kafka: KafkaTools, topics: dict[str, str], store: Path, scorer_for: Callable[..., ScorerProcess]
) -> None:
    ModelRegistry(store).promote(save_broken_version(store, [MARK]))
    events = synthetic_events(300, seed=61)
    for i in (10, 120, 121, 250, 299):
        events[i]["tenure"] = MARK
    scorer = scorer_for()
    scorer.wait_ready(timeout=120)
    kafka.produce(topics["events"], _records(events))

    letters = kafka.consume(topics["dlq"], 5, timeout=90, idle=2.0)
    assert sorted(_ids_of_letters(letters)) == sorted(events[i]["event_id"] for i in (10, 120, 121, 250, 299))
    assert {m.error_type for m in _letters(letters)} == {"scoring_failed"}
    assert all(m.exception_class == "ValueError" for m in _letters(letters))
    predicted = _ids(kafka.consume(topics["predictions"], 295, timeout=90, idle=2.0))
    assert len(predicted) == len(set(predicted)) == 295
    assert scorer.metric("churn_dead_letters_total", error_type="scoring_failed") == 5
    assert scorer.metric("churn_scoring_paused") == 0
    assert scorer.health("ready")[0] == 200
    assert scorer.stop() == 0, scorer.tail()


def _ids_of_letters(letters: list[Consumed]) -> list[str]:
    return [orjson.loads(r.value or b"{}")["event_id"] for r in letters]


def test_a_model_failing_on_everything_pauses_reports_not_ready_and_resumes_after_a_promotion(
    kafka: KafkaTools, topics: dict[str, str], store: Path, scorer_for: Callable[..., ScorerProcess]
) -> None:
    registry = ModelRegistry(store)
    good = registry.current()
    assert good is not None
    registry.promote(save_broken_version(store, [MARK]))
    events = synthetic_events(400, seed=62)
    for event in events:
        event["tenure"] = MARK
    scorer = scorer_for(scoring_breaker_window="50", scoring_probe_interval_s="2", scorer_live_timeout_s="5")
    scorer.wait_ready(timeout=120)
    kafka.produce(topics["events"], _records(events))

    deadline = time.monotonic() + 60
    while (status := scorer.health("ready"))[0] == 200 or "scoring" not in status[1].get("failing", {}):  # type: ignore[operator]
        assert time.monotonic() < deadline, (status, scorer.tail())
        time.sleep(0.2)
    assert "failed on" in str(status[1]["failing"]["scoring"])  # type: ignore[index]
    assert scorer.metric("churn_scoring_paused") == 1
    time.sleep(6)  # a few probes with the broken model still serving (and longer than the live timeout)
    assert scorer.health("live")[0] == 200
    assert scorer.health("ready")[0] == 503
    # Consuming paused instead of dead-lettering the stream: only what came before the window
    # held a tenth of its 50 records can have been dead-lettered.
    early = kafka.consume(topics["dlq"], 0, timeout=3, idle=1.0)
    assert len(early) <= 4, len(early)
    assert "still fails" in scorer.log_path.read_text(errors="replace")

    registry.promote(good)
    scorer.wait_ready(timeout=60)
    assert scorer.metric("churn_scoring_paused") == 0
    letters = kafka.consume(topics["dlq"], len(early), timeout=10, idle=2.0)
    predicted = _ids(kafka.consume(topics["predictions"], 400 - len(letters), timeout=90, idle=3.0))
    assert len(predicted) == len(set(predicted))  # no duplicates
    assert set(predicted) | set(_ids_of_letters(letters)) == {e["event_id"] for e in events}
    assert not set(predicted) & set(_ids_of_letters(letters))
    assert scorer.stop() == 0, scorer.tail()


def test_a_resource_error_crashes_the_worker_without_committing_and_a_restart_scores_the_batch(
    kafka: KafkaTools,
    kafka_bootstrap: str,
    topics: dict[str, str],
    store: Path,
    scorer_for: Callable[..., ScorerProcess],
) -> None:
    registry = ModelRegistry(store)
    good = registry.current()
    assert good is not None
    registry.promote(save_broken_version(store, [MARK], error="memory", name="oom"))
    events = synthetic_events(401, seed=63)
    events[200]["tenure"] = MARK
    crashing = scorer_for()
    kafka.produce(topics["events"], _records(events))
    code = crashing.process.wait(timeout=180)
    assert code != 0, crashing.tail()
    assert "MemoryError" in crashing.log_path.read_text(errors="replace")

    # Nothing committed at or past the record the model ran out of memory on.
    marked = next(
        r for r in kafka.consume(topics["events"], 401, timeout=60) if b'"tenure":1111' in (r.value or b"")
    )
    reader = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": crashing.env["CHURN_SCORER_APP_ID"]})
    try:
        [committed] = reader.committed([TopicPartition(topics["events"], marked.partition)], timeout=10)
    finally:
        reader.close()
    assert committed.offset <= marked.offset, (committed, marked.offset)

    registry.promote(good)
    restarted = scorer_for()
    predicted = set(_ids(kafka.consume(topics["predictions"], 401, timeout=120, idle=2.0)))
    assert predicted == {e["event_id"] for e in events}, restarted.tail()
    assert not kafka.consume(topics["dlq"], 0, timeout=2, idle=1.0)
    assert restarted.stop() == 0, restarted.tail()
