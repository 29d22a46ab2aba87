"""Measurement runs for ``churn bench stream``, each in a fresh subprocess.

``python -m benchmarks.runner MODE CONFIG.json`` consumes ``count`` preloaded
events from the start of a topic with a fresh consumer group and writes
``{"events", "seconds", "rate", "rss_mb"}`` to the config's ``result`` path:

- ``raw``: confluent-kafka consume -> produce the same bytes -> commit (no scoring: the ceiling);
- ``floor``: a Faust agent that only takes the events in micro-batches and acknowledges them;
- ``scorer``: the real Faust scorer app (:func:`scorer.app.create_app`);
- ``quix``: the Quix Streams peer (:mod:`benchmarks.quix_peer`);
- ``native``: the native engine (:class:`scorer.native.NativeScorer`).

``quix-serve`` runs the Quix peer until SIGTERM (for the latency runs).

The clock starts when the first batch arrives (group join and fetch start-up
are not measured) and stops when ``count`` events were handled — for the
scorers, when their output was acknowledged by the broker.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.machine import rss_mb
from config.settings import Settings


class _Meter:
    def __init__(self, count: int, result: Path) -> None:
        self.count = count
        self.result = result
        self.started: float | None = None
        self.handled = 0

    def batch(self, n: int) -> None:
        if self.started is None:
            self.started = time.perf_counter()
        self.handled += n

    def arrived(self) -> None:
        if self.started is None:
            self.started = time.perf_counter()

    def done(self) -> bool:
        return self.handled >= self.count

    def batch_or_exit(self, n: int) -> None:
        """Count a batch; once ``count`` events are handled, write the result and end the process.

        For Faust workers, whose shutdown would otherwise be timed too.
        """
        self.batch(n)
        if self.done():
            self.finish()
            os._exit(0)

    def finish(self) -> None:
        seconds = time.perf_counter() - (self.started or time.perf_counter())
        data = {
            "events": self.handled,
            "seconds": seconds,
            "rate": self.handled / max(seconds, 1e-9),
            "rss_mb": rss_mb(),
        }
        self.result.write_text(json.dumps(data))


def _settings(config: dict[str, Any]) -> Settings:
    return Settings(**config["settings"])


def _provider(settings: Settings) -> Any:
    from models.registry import ModelRegistry
    from monitoring.metrics import ScorerMetrics
    from scorer.model_provider import ModelProvider

    metrics = ScorerMetrics.create()
    return ModelProvider.from_store(ModelRegistry(settings.model_store), metrics), metrics


def run_raw(config: dict[str, Any], meter: _Meter) -> None:
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

    from kafka_io.client_config import confluent_consumer, confluent_producer

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


def run_native(config: dict[str, Any], meter: _Meter) -> None:

    from kafka_io.sink import DeliverySink
    from scorer.native import NativeScorer, tune_gc
    from scorer.runtime import BatchHandler

    settings = _settings(config)
    provider, metrics = _provider(settings)

    def on_batch(result: Any) -> None:
        meter.batch(result.consumed)

    handler = BatchHandler(settings, provider, metrics, DeliverySink(settings), on_batch=on_batch)
    original = handler.score

    def timed_score(records: Any) -> Any:
        meter.arrived()
        return original(records)

    handler.score = timed_score  # type: ignore[method-assign]
    scorer = NativeScorer(settings, handler)
    tune_gc()
    scorer.run(max_events=meter.count)
    meter.finish()


def run_quix(config: dict[str, Any], meter: _Meter) -> None:
    import gc

    from benchmarks.quix_peer import build_quix_app

    settings = _settings(config)
    provider, _metrics = _provider(settings)
    app: Any = None

    def on_scored() -> None:
        meter.arrived()
        meter.handled += 1
        if meter.handled == meter.count:
            app.stop()  # Quix flushes the producer and commits before run() returns

    app = build_quix_app(settings, provider.current, on_scored)
    gc.freeze()
    app.run()
    meter.finish()


def serve_quix(config: dict[str, Any], _meter: _Meter) -> None:
    """The Quix peer until SIGTERM/SIGINT (Quix installs its own handlers and stops cleanly)."""
    from benchmarks.quix_peer import build_quix_app

    settings = _settings(config)
    provider, _metrics = _provider(settings)
    build_quix_app(settings, provider.current).run()


def _faust_app(settings: Settings) -> Any:
    import faust

    from scorer.app import faust_consumer_options
    from scorer.faust_transport import install_fetch_wait

    app = faust.App(settings.scorer_app_id, **faust_consumer_options(settings))
    install_fetch_wait(app, settings.kafka_fetch_max_wait_ms)  # same consumer as the scorer
    return app


def _run_worker(app: Any) -> None:
    import faust

    faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False).execute_from_commandline()


def run_floor(config: dict[str, Any], meter: _Meter) -> None:
    settings = _settings(config)
    app = _faust_app(settings)
    topic = app.topic(settings.events_topic, key_serializer="raw", value_serializer="raw")

    async def floor(stream: Any) -> None:
        async for events in stream.noack_take(settings.scorer_max_batch, within=settings.scorer_max_wait_s):
            meter.arrived()
            for event in events:
                await stream.ack(event)
            meter.batch_or_exit(len(events))

    app.agent(topic, name="floor")(floor)
    _run_worker(app)


def run_scorer(config: dict[str, Any], meter: _Meter) -> None:
    import gc

    from scorer.app import create_app

    settings = _settings(config)
    provider, metrics = _provider(settings)
    scorer = create_app(settings, provider, metrics)

    scorer.handler.on_batch = lambda result: meter.batch_or_exit(result.consumed)
    original = scorer.handler.score

    def timed_score(records: Any) -> Any:
        meter.arrived()
        return original(records)

    scorer.handler.score = timed_score  # type: ignore[method-assign]
    gc.freeze()
    _run_worker(scorer.app)


RUNNERS = {
    "raw": run_raw,
    "floor": run_floor,
    "scorer": run_scorer,
    "quix": run_quix,
    "native": run_native,
    "quix-serve": serve_quix,
}


def main(argv: list[str]) -> None:
    mode, config_path = argv[1], Path(argv[2])
    config = json.loads(config_path.read_text())
    meter = _Meter(int(config["count"]), Path(config["result"]))
    RUNNERS[mode](config, meter)


if __name__ == "__main__":
    main(sys.argv)
