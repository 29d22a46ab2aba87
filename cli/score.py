"""``churn score``: the stream scorer, Faust worker or native engine (CHURN_* env; flags override)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cli.console import console, fail


def command(
    ctx: typer.Context,
    bootstrap: str | None = typer.Option(
        None, "--bootstrap", "-b", help="Kafka bootstrap servers (env CHURN_KAFKA_BOOTSTRAP_SERVERS)."
    ),
    store: Path | None = typer.Option(None, "--store", help="Model store (env CHURN_MODEL_STORE)."),
    web_port: int | None = typer.Option(
        None, "--web-port", help="Port of /metrics (env CHURN_SCORER_WEB_PORT, default 6066); 0 = none."
    ),
    max_batch: int | None = typer.Option(None, "--max-batch", help="Events per micro-batch (max)."),
    max_wait: float | None = typer.Option(
        None, "--max-wait", help="Seconds to wait for a batch to fill (CHURN_SCORER_MAX_WAIT_S)."
    ),
    app_id: str | None = typer.Option(None, "--app-id", help="Faust app id = consumer group."),
    events_topic: str | None = typer.Option(None, "--events-topic"),
    predictions_topic: str | None = typer.Option(None, "--predictions-topic"),
    dlq_topic: str | None = typer.Option(None, "--dlq-topic"),
    partitions: int | None = typer.Option(None, "--partitions", help="Partitions of topics it creates."),
    engine: str | None = typer.Option(
        None,
        "--engine",
        help="faust (default) or native: a confluent-kafka loop, same batches, topics and metrics, "
        "several times the throughput (env CHURN_SCORER_ENGINE).",
    ),
) -> None:
    """Score customer-events into churn-predictions; bad records go to the dead-letter topic."""
    from kafka_io.broker_watch import BrokerWatch
    from kafka_io.topics import ensure_topics
    from models.registry import ModelRegistry, RegistryError
    from monitoring.metrics import ScorerMetrics
    from scorer.metrics_server import serve_metrics
    from scorer.model_provider import ModelProvider

    settings = ctx.obj.with_overrides(
        kafka_bootstrap_servers=bootstrap,
        model_store=store,
        scorer_web_port=web_port,
        scorer_max_batch=max_batch,
        scorer_max_wait_s=max_wait,
        scorer_app_id=app_id,
        events_topic=events_topic,
        predictions_topic=predictions_topic,
        dlq_topic=dlq_topic,
        topic_partitions=partitions,
        scorer_engine=engine,
    )
    metrics = ScorerMetrics.create()
    try:
        provider = ModelProvider.from_store(ModelRegistry(settings.model_store), metrics)
    except RegistryError as exc:
        fail(str(exc))
        return
    try:
        ensure_topics(settings)
    except Exception as exc:
        fail(f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc}")
        return
    server = None
    if settings.scorer_web_port:
        try:
            server = serve_metrics(metrics.registry, settings.scorer_web_host, settings.scorer_web_port)
        except OSError as exc:
            fail(f"cannot serve /metrics on {settings.scorer_web_host}:{settings.scorer_web_port}: {exc}")
            return
    url = f"http://{settings.scorer_web_host}:{settings.scorer_web_port}/metrics" if server else "off"
    console.print(
        f"scoring {settings.events_topic} -> {settings.predictions_topic} (DLQ {settings.dlq_topic}) "
        f"on {settings.kafka_bootstrap_servers} with model {provider.current.version}; "
        f"engine {settings.scorer_engine}; group {settings.scorer_app_id}; metrics {url}"
    )
    watch = BrokerWatch(settings, metrics.broker_up)  # readiness during broker outages
    try:
        if settings.scorer_engine == "native":
            _run_native(settings, provider, metrics, watch)
        else:
            _run_faust(settings, provider, metrics, watch)
    finally:
        watch.stop()
        if server is not None:
            server.shutdown()


def _run_faust(settings: Any, provider: Any, metrics: Any, watch: Any) -> None:
    import gc

    from scorer.app import create_app

    scorer = create_app(settings, provider, metrics)
    # Everything loaded so far lives for the whole run: keep it out of the cyclic GC's way.
    gc.freeze()
    worker = scorer.worker(loglevel=settings.log_level)
    watch.start()  # after Faust imported aiokafka: the watch quiets aiokafka's reconnect noise
    try:
        worker.execute_from_commandline()  # returns via SystemExit(0) after a clean stop
    finally:
        scorer.handler.sink.close()


def _run_native(settings: Any, provider: Any, metrics: Any, watch: Any) -> None:
    from kafka_io.sink import DeliverySink
    from scorer.native import NativeScorer, tune_gc
    from scorer.runtime import BatchHandler

    sink = DeliverySink(settings, client_id="churn-scorer-native")
    scorer = NativeScorer(settings, BatchHandler(settings, provider, metrics, sink))
    scorer.install_signal_handlers()
    tune_gc()
    watch.start()
    try:
        scorer.run()
    finally:
        sink.close()
