"""``churn score``: the stream scorer, Faust worker or native engine (CHURN_* env; flags override)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from cli.console import console, fail, overridden
from cli.kafka_flags import KAFKA_OPTION, with_kafka_options
from config.choices import ScorerEngine
from models.store import RegistryError

#: The exit code of a scorer whose output can never be delivered (kafka_io.sink.PermanentDeliveryError).
PERMANENT_DELIVERY_EXIT = 3


def command(
    ctx: typer.Context,
    bootstrap: str | None = typer.Option(
        None, "--bootstrap", "-b", help="Kafka bootstrap servers (env CHURN_KAFKA_BOOTSTRAP_SERVERS)."
    ),
    store: Path | None = typer.Option(None, "--store", help="Model store (env CHURN_MODEL_STORE)."),
    web_port: int | None = typer.Option(
        None,
        "--web-port",
        help="Port of /metrics, /health/live and /health/ready (env CHURN_SCORER_WEB_PORT, default 6066); "
        "0 = none.",
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
    engine: ScorerEngine | None = typer.Option(
        None,
        "--engine",
        help="faust (default) or native: a confluent-kafka loop, same batches, topics and metrics, "
        "several times the throughput (env CHURN_SCORER_ENGINE).",
    ),
    kafka_option: list[str] = KAFKA_OPTION,
) -> None:
    """Score customer-events into churn-predictions; bad records go to the dead-letter topic."""
    # The scorer loads sklearn, the Kafka clients and (for that engine) Faust: imported when it
    # runs, not for `churn --help`.
    from kafka_io.broker_watch import BrokerWatch
    from kafka_io.client_config import KafkaOptionError
    from kafka_io.sink import PermanentDeliveryError
    from kafka_io.topics import ensure_topics
    from models.live import LiveModel
    from models.registry import ModelRegistry
    from monitoring.metrics import ScorerMetrics
    from scorer.engines import build_engine
    from scorer.readiness import BROKER
    from scorer.web import ScorerWebServer

    settings = overridden(
        ctx.obj,
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
    settings = with_kafka_options(settings, kafka_option, ("consumer", "producer"))
    metrics = ScorerMetrics.create()
    try:
        live = LiveModel.load(ModelRegistry.from_settings(settings), events=metrics)
    except RegistryError as exc:
        fail(str(exc))
    refused = live.last_result
    if live.fallback and refused is not None:
        console.print(
            f"[bold red]model fallback:[/] CURRENT ({escape(str(refused.candidate))}) was refused: "
            f"{escape(str(refused.error))}; scoring with {escape(live.current.version)} until it is fixed"
        )
    try:
        ensure_topics(settings)
    except Exception as exc:
        fail(f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc}")
    try:
        scorer = build_engine(settings, live, metrics)
    except KafkaOptionError as exc:
        fail(str(exc))
    readiness = scorer.handler.readiness
    server = None
    if settings.scorer_web_port:
        try:
            server = ScorerWebServer(
                metrics.registry, readiness, settings.scorer_web_host, settings.scorer_web_port
            ).start()
        except OSError as exc:
            fail(f"cannot serve /metrics on {settings.scorer_web_host}:{settings.scorer_web_port}: {exc}")
    url = f"http://{settings.scorer_web_host}:{settings.scorer_web_port}" if server else "off"
    console.print(
        f"scoring {settings.events_topic} -> {settings.predictions_topic} (DLQ {settings.dlq_topic}) "
        f"on {settings.kafka_bootstrap_servers} with model {live.current.version}; "
        f"engine {settings.scorer_engine}; group {settings.scorer_app_id}; "
        f"web {url} (/metrics, /health/ready)"
    )

    def broker_changed(up: bool) -> None:
        readiness.set(BROKER, up, f"broker {settings.kafka_bootstrap_servers} does not answer")

    # Started once the engine has loaded its Kafka client, whose reconnect noise the watch quiets.
    watch = BrokerWatch(settings, metrics.broker_up, on_change=broker_changed).start()
    try:
        scorer.serve()
    except PermanentDeliveryError:
        # The sink logged the error and what to do; exit non-zero without committing past it.
        raise typer.Exit(PERMANENT_DELIVERY_EXIT) from None
    finally:
        watch.stop()
        if server is not None:
            server.shutdown()
