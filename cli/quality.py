"""``churn quality``: live model quality per version, from predictions joined with observed outcomes."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.console import console, fail


def command(
    ctx: typer.Context,
    bootstrap: str | None = typer.Option(
        None, "--bootstrap", "-b", help="Kafka bootstrap servers (env CHURN_KAFKA_BOOTSTRAP_SERVERS)."
    ),
    store: Path | None = typer.Option(
        None, "--store", help="Model store, for each version's training ROC AUC (env CHURN_MODEL_STORE)."
    ),
    web_port: int | None = typer.Option(
        None,
        "--web-port",
        help="Port of /metrics, /health/live and /health/ready (env CHURN_QUALITY_WEB_PORT, default 6067).",
    ),
    app_id: str | None = typer.Option(
        None,
        "--app-id",
        help="Faust app id = consumer group and changelog prefix (env CHURN_QUALITY_APP_ID).",
    ),
    window: int | None = typer.Option(
        None,
        "--window",
        help="Labelled predictions per version the metrics cover (env CHURN_QUALITY_WINDOW).",
    ),
    horizon_days: float | None = typer.Option(
        None,
        "--horizon-days",
        help="How long predictions wait for their outcome (env CHURN_QUALITY_HORIZON_DAYS).",
    ),
    predictions_topic: str | None = typer.Option(None, "--predictions-topic"),
    shadow_topic: str | None = typer.Option(None, "--shadow-topic"),
    outcomes_topic: str | None = typer.Option(None, "--outcomes-topic"),
    dlq_topic: str | None = typer.Option(None, "--dlq-topic", help="Where unreadable records go."),
) -> None:
    """Join predictions (and the challenger's shadow predictions) with outcomes; export live quality."""
    # Faust, the Kafka clients and scikit-learn load when the command runs, not for `churn --help`.
    import importlib.util

    from pydantic import ValidationError

    from kafka_io.topics import ensure_topics
    from models.registry import ModelRegistry
    from monitoring.metrics import QualityMetrics
    from scorer.quality_job import QualityJob
    from scorer.web import ScorerWebServer

    try:
        settings = ctx.obj.with_overrides(
            kafka_bootstrap_servers=bootstrap,
            model_store=store,
            quality_web_port=web_port,
            quality_app_id=app_id,
            quality_window=window,
            quality_horizon_days=horizon_days,
            predictions_topic=predictions_topic,
            shadow_predictions_topic=shadow_topic,
            outcomes_topic=outcomes_topic,
            outcomes_dlq_topic=dlq_topic,
        )
        settings = type(settings).model_validate(settings.model_dump())  # flags obey the settings' bounds
    except ValidationError as exc:
        fail(str(exc))
    if settings.quality_store == "rocksdb://" and importlib.util.find_spec("rocksdict") is None:
        fail("CHURN_QUALITY_STORE=rocksdb:// needs rocksdict: pip install 'churn-stream[rocksdb]'")
    topics = [
        settings.predictions_topic,
        settings.shadow_predictions_topic,
        settings.outcomes_topic,
        settings.outcomes_dlq_topic,
    ]
    try:
        ensure_topics(settings, topics)
    except Exception as exc:
        fail(f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc}")
    metrics = QualityMetrics.create()
    job = QualityJob(settings, metrics, ModelRegistry(settings.model_store))
    server = None
    if settings.quality_web_port:
        try:
            server = ScorerWebServer(
                metrics.registry,
                job.readiness,
                settings.quality_web_host,
                settings.quality_web_port,
                "quality",
            ).start()
        except OSError as exc:
            fail(f"cannot serve /metrics on {settings.quality_web_host}:{settings.quality_web_port}: {exc}")
    url = f"http://{settings.quality_web_host}:{settings.quality_web_port}" if server else "off"
    console.print(
        f"joining {settings.predictions_topic} + {settings.shadow_predictions_topic} with "
        f"{settings.outcomes_topic} on {settings.kafka_bootstrap_servers} "
        f"(DLQ {settings.outcomes_dlq_topic}); "
        f"window {settings.quality_window}, horizon {settings.quality_horizon_days:g} days; "
        f"group {settings.quality_app_id}; web {url} (/metrics, /health/ready)"
    )
    try:
        job.serve()
    finally:
        if server is not None:
            server.shutdown()
