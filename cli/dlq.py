"""``churn dlq replay``: re-publish dead letters to the input topic, optionally fixed first."""

from __future__ import annotations

import typer
from rich.table import Table

from cli.console import console, fail, overridden, printable
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
    group: str | None = typer.Option(
        None,
        "--group",
        help="Consumer group keeping this replay's progress (default churn-dlq-replay, "
        "or churn-dlq-replay.<types> with --error-type).",
    ),
    from_: str | None = typer.Option(
        None, "--from", help="Start at this offset (every partition) or ISO time; moves no progress."
    ),
    until: str | None = typer.Option(
        None, "--until", help="Stop before this offset (every partition) or ISO time; moves no progress."
    ),
    again: bool = typer.Option(
        False,
        "--again",
        help="Read from the start (or --from) again and replay records that were replayed and failed again.",
    ),
    force: bool = typer.Option(False, "--force", help="Replay even dead letters at CHURN_DLQ_MAX_REPLAYS."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be replayed; produce nothing."),
    bootstrap: str | None = typer.Option(None, "--bootstrap", "-b", help="Kafka bootstrap servers."),
    dlq_topic: str | None = typer.Option(None, "--dlq-topic", help="Read this DLQ (CHURN_DLQ_TOPIC)."),
    events_topic: str | None = typer.Option(
        None, "--events-topic", help="Publish to this topic (CHURN_EVENTS_TOPIC)."
    ),
    kafka_option: list[str] = KAFKA_OPTION,
) -> None:
    """Re-publish dead letters (original key; `replayed_from`, `replay_count` headers) to the events topic.

    Each run continues where the last one of its group stopped, so running it twice
    replays nothing twice; see docs/reliability.md for the rules.
    """
    # The Kafka client loads when the command runs, not for `churn --help`.
    from producer.replay import SKIP_REASONS, Bound, Fix, replay

    settings = overridden(
        ctx.obj, kafka_bootstrap_servers=bootstrap, dlq_topic=dlq_topic, events_topic=events_topic
    )
    settings = with_kafka_options(settings, kafka_option, ("consumer", "producer"))
    try:
        parsed = Fix.parse(fix, set_)
    except ValueError as exc:
        fail(f"bad fix: {exc}")
    try:
        start = Bound.parse(from_) if from_ is not None else None
        end = Bound.parse(until) if until is not None else None
    except ValueError as exc:
        fail(f"bad range: {exc}")
    try:
        summary = replay(
            settings,
            error_types=error_type,
            limit=limit,
            fix=parsed,
            group=group,
            start=start,
            until=end,
            again=again,
            force=force,
            dry_run=dry_run,
        )
    except (RuntimeError, TimeoutError) as exc:
        fail(str(exc))
    if dry_run and summary.planned:
        table = Table("partition", "offset", "error_type", "replay_count", "key", title="would be replayed")
        for item in summary.planned:
            key = printable((item.key or b"").decode("utf-8", "replace"))
            table.add_row(
                str(item.partition),
                str(item.offset),
                printable(item.error_type),
                str(item.replay_count),
                key[:40],
            )
        console.print(table)
    types = ", ".join(f"{printable(t)} {n}" for t, n in summary.by_type.most_common()) or "none"
    verb = "would replay" if dry_run else "replayed"
    console.print(
        f"read {summary.read} dead letters from {settings.dlq_topic} (group {summary.group}); "
        f"{verb} {summary.replayed} to {settings.events_topic} ({types}); "
        f"skipped {sum(summary.skipped.values())}; not fixable {summary.unfixable}; "
        f"progress {'committed' if summary.committed else 'not moved'}"
    )
    for reason, count in summary.skipped.most_common():
        console.print(f"  skipped {count} {reason}: {SKIP_REASONS[reason]}")
