"""``churn produce``: publish customer events (synthetic or a telco CSV) at a steady rate, and outcomes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.live import Live
from rich.text import Text

from cli.console import console, fail, overridden, stop_on_signals
from cli.kafka_flags import KAFKA_OPTION, with_kafka_options


def command(
    ctx: typer.Context,
    rate: float | None = typer.Option(
        None, "--rate", "-r", help="Events per second (token bucket; env CHURN_PRODUCER_RATE)."
    ),
    count: int | None = typer.Option(None, "--count", "-n", help="Stop after N events (default: Ctrl-C)."),
    csv: Path | None = typer.Option(None, "--csv", help="Replay a telco-format CSV, not synthetic data."),
    seed: int = typer.Option(7, "--seed", help="Seed of the synthetic customers."),
    unlimited: bool = typer.Option(False, "--unlimited", help="No rate limit: as fast as the broker takes."),
    topic: str | None = typer.Option(None, "--topic", help="Target topic (env CHURN_EVENTS_TOPIC)."),
    bootstrap: str | None = typer.Option(None, "--bootstrap", "-b", help="Kafka bootstrap servers."),
    outcomes: bool = typer.Option(
        False,
        "--outcomes",
        help="Also publish each customer's observed outcome on the outcomes topic, --outcome-delay "
        "after its event: the label the synthetic generator drew (or the CSV's Churn column).",
    ),
    outcomes_only: bool = typer.Option(
        False,
        "--outcomes-only",
        help="Publish only outcomes, observed now: the labels of the synthetic customers of --seed, or "
        "a CSV's customerID and Churn columns (real labels for customers published before).",
    ),
    outcome_delay: float = typer.Option(
        5.0, "--outcome-delay", help="Seconds between an event and its outcome (with --outcomes)."
    ),
    outcome_share: float = typer.Option(
        1.0, "--outcome-share", help="Share of customers whose outcome is observed (with --outcomes)."
    ),
    outcomes_topic: str | None = typer.Option(
        None, "--outcomes-topic", help="Topic of the outcomes (env CHURN_OUTCOMES_TOPIC)."
    ),
    kafka_option: list[str] = KAFKA_OPTION,
) -> None:
    """Publish CustomerEvents keyed by customer_id (and outcomes); exits non-zero if any delivery failed."""
    # The Kafka client, pandas and the wire models load when the command runs, not for `churn --help`.
    from kafka_io.topics import ensure_topics
    from producer.events import csv_labelled_rows, csv_rows, stamp, synthetic_labelled_rows
    from producer.outcomes import LabelledEvent, OutcomeFileError, OutcomeSchedule, csv_outcomes
    from producer.publisher import PublishStats, publish
    from training.data import DataError

    settings = overridden(
        ctx.obj, kafka_bootstrap_servers=bootstrap, events_topic=topic, outcomes_topic=outcomes_topic
    )
    settings = with_kafka_options(settings, kafka_option, ("producer",))
    if count is not None and count < 1:
        fail("--count must be at least 1")
    events_rate = None if unlimited else (rate or settings.producer_rate)
    if events_rate is not None and events_rate <= 0:
        fail("--rate must be positive")
    if outcomes and outcomes_only:
        fail("--outcomes and --outcomes-only exclude each other")
    if outcome_delay < 0:
        fail("--outcome-delay must not be negative")
    if not 0.0 <= outcome_share <= 1.0:
        fail("--outcome-share must be between 0 and 1")
    if csv is not None and not csv.is_file():
        fail(f"no such file: {csv}")

    schedule = OutcomeSchedule(outcome_delay, outcome_share, seed) if outcomes else None
    records: Iterator[dict[str, Any] | LabelledEvent]
    target = settings.events_topic
    if outcomes_only:
        target = settings.outcomes_topic
        if csv is not None:
            try:
                labels = csv_outcomes(csv)
                first_outcome = next(labels)
            except OutcomeFileError as exc:
                fail(str(exc))
            except StopIteration:
                fail(f"{csv}: no rows")
            records = itertools.chain([first_outcome], labels)
        else:
            records = (
                {"customer_id": row["customer_id"], "churned": churned}
                for row, churned in synthetic_labelled_rows(seed=seed)
            )
    else:
        source: Iterator[tuple[dict[str, Any], bool | None]]
        if csv is not None:
            try:
                rows: Iterator[Any] = csv_labelled_rows(csv) if outcomes else csv_rows(csv)
                first = next(rows)
            except DataError as exc:
                hint = " (a file of labels only? use --outcomes-only)" if outcomes else ""
                fail(f"{csv}: {exc}{hint}")
            except StopIteration:
                fail(f"{csv}: no rows")
            both = itertools.chain([first], rows)
            source = both if outcomes else ((row, None) for row in both)
        else:
            source = synthetic_labelled_rows(seed=seed)
        records = (
            LabelledEvent(stamp(row), churned) if outcomes and churned is not None else stamp(row)
            for row, churned in source
        )
    if count is not None:
        records = itertools.islice(records, count)
    if outcomes or outcomes_only:
        try:
            ensure_topics(settings, [settings.outcomes_topic])
        except Exception as exc:
            fail(f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc}")

    stop = stop_on_signals()

    target_topic = target + (f" + {settings.outcomes_topic}" if outcomes else "")

    def line(stats: PublishStats) -> Text:
        expected = f"/{count:,}" if count and not outcomes else ""
        return Text.from_markup(
            f"[bold]{target_topic}[/] @ {settings.kafka_bootstrap_servers}  "
            f"sent [cyan]{stats.sent:,}{expected}[/]  acked [green]{stats.acked:,}[/]  "
            f"failed [{'red' if stats.failed else 'green'}]{stats.failed:,}[/]  "
            f"{stats.rate:,.0f} ev/s"
        )

    with Live(line(PublishStats()), console=console, refresh_per_second=8, transient=False) as live:
        stats = publish(
            records,
            settings,
            topic=target,
            rate=events_rate,
            on_progress=lambda s: live.update(line(s)),
            stop=stop,
            outcomes=schedule,
        )
    if not console.is_terminal:
        console.line()
    verdict = "[green]all acknowledged[/]" if stats.ok else f"[red]{stats.failed:,} failed[/]"
    what = "outcomes" if outcomes_only else "records" if outcomes else "events"
    console.print(
        f"published {stats.sent:,} {what} in {stats.seconds:.1f} s "
        f"({stats.acked / max(stats.seconds, 1e-9):,.0f} acked/s): {verdict}"
        + ("" if events_rate is None else f"; target rate {events_rate:,.0f}/s")
    )
    if outcomes:
        console.print(
            f"  of which {stats.outcomes:,} outcomes on {settings.outcomes_topic}"
            + (f"; {stats.outcomes_unsent:,} not yet due were not sent" if stats.outcomes_unsent else "")
        )
    for error in stats.errors[:5]:
        console.print(f"  [red]{error}[/]")
    if not stats.ok:
        raise typer.Exit(1)
