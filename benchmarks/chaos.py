"""Chaos runs: produce at a steady rate while ``churn score`` workers are SIGKILLed, then audit.

Used by the crash-safety tests (short runs) and ``churn bench chaos`` (long
runs). A run produces ``events`` synthetic events at ``rate`` per second to a
fresh events topic, starts ``workers`` real ``churn score`` subprocesses in one
consumer group, kills a worker with SIGKILL ``kills`` times at evenly spaced
moments (each time after it has consumed something since it started, so every
kill lands mid-stream), restarts it unless ``restart`` is off, and finally reads
the predictions and dead-letter topics. The audit says which valid event_ids
have no prediction (must be none), how many predictions are duplicates
(at-least-once delivery re-scores what was consumed but not committed before
a crash) and how many records went to the DLQ (must be none: every event is valid).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer

from config.settings import Settings
from devstack.ports import free_port
from devstack.processes import ScorerProcess
from kafka_io.client_config import confluent_producer
from kafka_io.topics import ensure_topics, read_topic
from producer.events import synthetic_events

log = logging.getLogger(__name__)


@dataclass
class ChaosReport:
    events: int
    rate: float
    kills: int
    workers: int
    produced: int = 0
    predictions: int = 0
    unique_scored: int = 0
    missing: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    seconds: float = 0.0
    drain_seconds: float = 0.0
    kill_times: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.dead_letters == 0 and self.produced == self.events

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "ok": self.ok}


def _produce_steadily(
    settings: Settings, events: list[dict[str, Any]], rate: float, report: ChaosReport
) -> None:
    producer = Producer(confluent_producer(settings, **{"client.id": "churn-chaos"}))
    started = time.monotonic()
    failures: list[str] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(str(err))

    for i, event in enumerate(events):
        due = started + i / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        while True:
            try:
                producer.produce(
                    settings.events_topic,
                    key=event["customer_id"].encode(),
                    value=orjson.dumps(event),
                    on_delivery=delivered,
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(60)
    report.produced = len(events) - remaining - len(failures)


def run_chaos(
    settings: Settings,
    workdir: Path,
    *,
    events: int = 20_000,
    rate: float = 2000.0,
    kills: int = 3,
    workers: int = 1,
    restart: bool = True,
    drain_timeout_s: float = 180.0,
    seed: int = 2024,
) -> ChaosReport:
    """One chaos run on fresh topics of ``settings``' broker; see the module docstring."""
    run = uuid.uuid4().hex[:8]
    settings = settings.for_run("chaos", run)
    ensure_topics(settings)
    env = settings.child_env("topic_partitions")
    workdir.mkdir(parents=True, exist_ok=True)
    report = ChaosReport(events=events, rate=rate, kills=kills, workers=workers)
    batch = synthetic_events(events, seed=seed)
    started = time.monotonic()
    spawned = 0

    def spawn() -> ScorerProcess:
        nonlocal spawned
        spawned += 1
        worker_env = {**env, "CHURN_SCORER_WEB_PORT": str(free_port())}
        return ScorerProcess(worker_env, workdir / f"worker-{spawned}.log")

    pool = [spawn() for _ in range(workers)]
    producer = threading.Thread(target=_produce_steadily, args=(settings, batch, rate, report), daemon=True)
    producer.start()
    duration = events / rate
    try:
        for k in range(kills):
            target_time = started + duration * (k + 1) / (kills + 1)
            victim = k % len(pool)
            while time.monotonic() < target_time or pool[victim].consumed() == 0:
                if not pool[victim].running():
                    raise RuntimeError(f"worker exited on its own; see {pool[victim].log_path}")
                time.sleep(0.05)
            pool[victim].kill()  # SIGKILL: no flush, no commit
            report.kill_times.append(round(time.monotonic() - started, 2))
            log.info("chaos: SIGKILLed worker %d at %.1f s", victim, report.kill_times[-1])
            if restart:
                pool[victim] = spawn()
            else:
                pool.pop(victim)
        producer.join()
        drain_started = time.monotonic()
        wanted = {e["event_id"] for e in batch}
        seen: Counter[str] = Counter()
        while time.monotonic() - drain_started < drain_timeout_s:
            seen = Counter(
                orjson.loads(m.value() or b"")["event_id"]
                for m in read_topic(settings, settings.predictions_topic, idle_s=2.0)
            )
            if wanted <= set(seen):
                break
        report.drain_seconds = time.monotonic() - drain_started
        report.seconds = time.monotonic() - started
        report.predictions = sum(seen.values())
        report.unique_scored = len(set(seen) & wanted)
        report.missing = len(wanted - set(seen))
        report.duplicates = report.predictions - len(seen)
        report.dead_letters = len(read_topic(settings, settings.dlq_topic, idle_s=1.0))
    finally:
        for worker in pool:
            worker.stop(timeout=15)
    return report
