"""Measurement runs for ``churn bench stream``, each in a fresh subprocess.

``python -m benchmarks.runner MODE CONFIG.json`` consumes ``count`` preloaded
events from the start of a topic with a fresh consumer group and writes
``{"events", "seconds", "rate", "rss_mb", "cpu_s", "main_cpu_s"}`` to the config's ``result``
path (``cpu_s``: CPU time of the whole process, every thread, while the clock ran; ``main_cpu_s``:
of the thread that handles the batches):

- ``raw``: confluent-kafka consume -> produce the same bytes -> commit (no scoring: the ceiling);
- ``floor``: a Faust agent that only takes the events in micro-batches and acknowledges them;
- ``scorer``: the Faust engine of ``churn score`` (:func:`scorer.engines.build_engine`);
- ``quix``: the Quix Streams peer (:mod:`benchmarks.quix_peer`);
- ``native``: the native engine of ``churn score`` (:func:`scorer.engines.build_engine`).

``quix-serve`` runs the Quix peer until SIGTERM (for the latency runs).

The clock starts when the first batch arrives (group join and fetch start-up
are not measured) and stops when ``count`` events were handled — for the
scorers, when their output was acknowledged by the broker.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from benchmarks.machine import rss_mb
from benchmarks.quix_peer import build_quix_app
from config.settings import Settings
from kafka_io.client_config import confluent_consumer, confluent_producer
from models.live import LiveModel
from models.registry import ModelRegistry
from monitoring.metrics import ScorerMetrics
from scorer.engines import build_engine
from scorer.native_engine import NativeEngine

if TYPE_CHECKING:
    from scorer.faust_engine import FaustEngine


class _Meter:
    def __init__(self, count: int, result: Path) -> None:
        self.count = count
        self.result = result
        self.started: float | None = None
        self.cpu_started = 0.0
        self.main_cpu_started = 0.0
        self.handled = 0
        self.finished = False

    def arrived(self, *_: object) -> None:
        """The clock starts with the first batch."""
        if self.started is None:
            self.started = time.perf_counter()
            self.cpu_started = time.process_time()
            self.main_cpu_started = time.thread_time()

    def batch(self, n: int) -> None:
        self.arrived()
        self.handled += n

    def done(self) -> bool:
        return self.handled >= self.count

    def batch_then_stop(self, n: int) -> None:
        """Count a batch; once ``count`` events are handled, write the result and stop the worker.

        For Faust workers, which run until a signal: this process sends itself SIGTERM, and
        the worker's clean shutdown happens after the clock has stopped.
        """
        if self.finished:  # a batch delivered during the shutdown
            return
        self.batch(n)
        if self.done():
            self.finish()
            os.kill(os.getpid(), signal.SIGTERM)

    def finish(self) -> None:
        seconds = time.perf_counter() - (self.started or time.perf_counter())
        data = {
            "events": self.handled,
            "seconds": seconds,
            "rate": self.handled / max(seconds, 1e-9),
            "rss_mb": rss_mb(),
            "cpu_s": time.process_time() - self.cpu_started,
            "main_cpu_s": time.thread_time() - self.main_cpu_started,
        }
        self.result.write_text(json.dumps(data))
        self.finished = True


def _settings(config: dict[str, Any], **overrides: Any) -> Settings:
    return Settings(**config["settings"]).with_overrides(**overrides)


def _live(settings: Settings, metrics: ScorerMetrics | None = None) -> LiveModel:
    return LiveModel.load(ModelRegistry.from_settings(settings), events=metrics)


def run_raw(config: dict[str, Any], meter: _Meter) -> None:
    settings = _settings(config)
    consumer = Consumer(confluent_consumer(settings, settings.scorer_app_id))
    producer = Producer(confluent_producer(settings, **{"linger.ms": 1}))
    consumer.subscribe([settings.events_topic])
    out = settings.predictions_topic
    while not meter.done():
        messages = consumer.consume(settings.scorer_max_batch, timeout=settings.scorer_max_wait_s)
        if not messages:
            continue
        meter.arrived()
        for m in messages:
            while True:
                try:
                    producer.produce(out, m.value(), m.key())
                    break
                except BufferError:
                    producer.poll(0.01)
        producer.flush()
        consumer.commit(asynchronous=True)
        meter.batch(len(messages))
    meter.finish()
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:  # _NO_OFFSET: the last asynchronous commit already had them all
        if exc.args[0].code() != KafkaError._NO_OFFSET:
            raise
    consumer.close()


def _metered_engine(
    config: dict[str, Any], meter: _Meter, count: Callable[[int], None], **overrides: Any
) -> FaustEngine | NativeEngine:
    """The engine ``churn score`` runs, with the meter's clock on its batches."""
    settings = _settings(config, **overrides)
    metrics = ScorerMetrics.create()
    return build_engine(
        settings,
        _live(settings, metrics),
        metrics,
        on_received=meter.arrived,
        on_batch=lambda result: count(result.consumed),
    )


def run_native(config: dict[str, Any], meter: _Meter, **overrides: Any) -> None:
    engine = _metered_engine(config, meter, meter.batch, scorer_engine="native", **overrides)
    assert isinstance(engine, NativeEngine)  # the settings name it
    engine.serve(max_events=meter.count)
    meter.finish()


def run_scorer(config: dict[str, Any], meter: _Meter, **overrides: Any) -> None:
    overrides = {"scorer_engine": "faust", "log_level": "WARNING", **overrides}
    _metered_engine(config, meter, meter.batch_then_stop, **overrides).serve()


def run_native_reasons(config: dict[str, Any], meter: _Meter) -> None:
    run_native(config, meter, scorer_explain=True)


def run_scorer_reasons(config: dict[str, Any], meter: _Meter) -> None:
    run_scorer(config, meter, scorer_explain=True)


def run_native_threads(config: dict[str, Any], meter: _Meter) -> None:
    run_native(config, meter, scorer_threads=0)


def run_floor(config: dict[str, Any], meter: _Meter) -> None:
    # The Faust floor needs Faust whatever the engine: imported here, where it runs.
    from scorer.faust_engine import faust_app, run_worker

    settings = _settings(config)
    app = faust_app(settings)
    topic = app.topic(settings.events_topic, key_serializer="raw", value_serializer="raw")

    async def floor(stream: Any) -> None:
        async for events in stream.noack_take(settings.scorer_max_batch, within=settings.scorer_max_wait_s):
            meter.arrived()
            for event in events:
                await stream.ack(event)
            meter.batch_then_stop(len(events))

    app.agent(topic, name="floor")(floor)
    run_worker(app, "WARNING")


def run_quix(config: dict[str, Any], meter: _Meter) -> None:
    settings = _settings(config)
    app: Any = None

    def on_scored() -> None:
        meter.batch(1)
        if meter.handled == meter.count:
            app.stop()  # Quix flushes the producer and commits before run() returns

    app = build_quix_app(settings, _live(settings).current, on_scored)
    gc.freeze()
    app.run()
    meter.finish()


def serve_quix(config: dict[str, Any], _meter: _Meter) -> None:
    """The Quix peer until SIGTERM/SIGINT (Quix installs its own handlers and stops cleanly)."""
    settings = _settings(config)
    build_quix_app(settings, _live(settings).current).run()


RUNNERS: dict[str, Callable[[dict[str, Any], _Meter], None]] = {
    "raw": run_raw,
    "floor": run_floor,
    "scorer": run_scorer,
    "quix": run_quix,
    "native": run_native,
    "native-reasons": run_native_reasons,
    "scorer-reasons": run_scorer_reasons,
    "native-threads": run_native_threads,
    # The shadow variants' settings carry the store with CHALLENGER set and shadow_scoring on.
    "scorer-shadow": run_scorer,
    "native-shadow": run_native,
    "quix-serve": serve_quix,
}


def main(argv: list[str]) -> None:
    mode, config_path = argv[1], Path(argv[2])
    config = json.loads(config_path.read_text())
    meter = _Meter(int(config["count"]), Path(config["result"]))
    RUNNERS[mode](config, meter)


if __name__ == "__main__":
    main(sys.argv)
