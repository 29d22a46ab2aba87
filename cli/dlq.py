"""``churn dlq replay``: re-publish dead letters to the input topic, optionally fixed first."""

from __future__ import annotations

import typer

from cli.console import console, fail, overridden
from cli.kafka_flags import KAFKA_OPTION, with_kafka_options

app = typer.Typer(help="The dead-letter topic.", no_args_is_help=True)


@app.command("replay")
def replay_command(
    ctx: typer.Context,
    error_type: list[str] = typer.Option(
        [], "--error-type", "-t", help="Replay only dead letters of this error_type (repeatable)."
    ),
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="Replay at most N dead letters."),
    fix: str | None = typer.Option(
        None, "--fix", help="JSON merge patch applied to each record first, e.g. '{\"tenure\": 3}'."
    ),
    set_: list[str] = typer.Option(
        [], "--set", help="field=value override (value parsed as JSON if it can be)."
    ),
    bootstrap: str | None = typer.Option(None, "--bootstrap", "-b", help="Kafka bootstrap servers."),
    dlq_topic: str | None = typer.Option(None, "--dlq-topic", help="Read this DLQ (CHURN_DLQ_TOPIC)."),
    events_topic: str | None = typer.Option(
        None, "--events-topic", help="Publish to this topic (CHURN_EVENTS_TOPIC)."
    ),
    kafka_option: list[str] = KAFKA_OPTION,
) -> None:
    """Re-publish dead letters (original key, `replayed_from` header) to the events topic."""
    # The Kafka client loads when the command runs, not for `churn --help`.
    from producer.replay import Fix, replay

    settings = overridden(
        ctx.obj, kafka_bootstrap_servers=bootstrap, dlq_topic=dlq_topic, events_topic=events_topic
    )
    settings = with_kafka_options(settings, kafka_option, ("consumer", "producer"))
    try:
        parsed = Fix.parse(fix, set_)
    except ValueError as exc:
        fail(f"bad fix: {exc}")
        return
    try:
        summary = replay(settings, error_types=error_type, limit=limit, fix=parsed)
    except (RuntimeError, TimeoutError) as exc:
        fail(str(exc))
        return
    types = ", ".join(f"{t} {n}" for t, n in summary.by_type.most_common()) or "none"
    console.print(
        f"read {summary.read} dead letters from {settings.dlq_topic}; matched {summary.matched}; "
        f"replayed {summary.replayed} to {settings.events_topic} ({types}); "
        f"not fixable {summary.unfixable}"
    )
