"""``churn produce``: publish customer events (synthetic or a telco CSV) at a steady rate."""

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
    kafka_option: list[str] = KAFKA_OPTION,
) -> None:
    """Publish CustomerEvents keyed by customer_id; exits non-zero if any delivery failed."""
    # The Kafka client, pandas and the wire models load when the command runs, not for `churn --help`.
    from producer.events import csv_rows, stamp, synthetic_rows
    from producer.publisher import PublishStats, publish
    from training.data import DataError

    settings = overridden(ctx.obj, kafka_bootstrap_servers=bootstrap, events_topic=topic)
    settings = with_kafka_options(settings, kafka_option, ("producer",))
    if count is not None and count < 1:
        fail("--count must be at least 1")
    events_rate = None if unlimited else (rate or settings.producer_rate)
    if events_rate is not None and events_rate <= 0:
        fail("--rate must be positive")
    if csv is not None:
        if not csv.is_file():
            fail(f"no such file: {csv}")
        try:
            rows = csv_rows(csv)
            first = next(rows)
        except DataError as exc:
            fail(f"{csv}: {exc}")
            return
        except StopIteration:
            fail(f"{csv}: no rows")
            return
        source: Iterator[dict[str, Any]] = itertools.chain([first], rows)
    else:
        source = synthetic_rows(seed=seed)
    events: Iterator[dict[str, Any]] = (stamp(row) for row in source)
    if count is not None:
        events = itertools.islice(events, count)

    stop = stop_on_signals()

    def line(stats: PublishStats) -> Text:
        target = f"/{count:,}" if count else ""
        return Text.from_markup(
            f"[bold]{settings.events_topic}[/] @ {settings.kafka_bootstrap_servers}  "
            f"sent [cyan]{stats.sent:,}{target}[/]  acked [green]{stats.acked:,}[/]  "
            f"failed [{'red' if stats.failed else 'green'}]{stats.failed:,}[/]  "
            f"{stats.rate:,.0f} ev/s"
        )

    with Live(line(PublishStats()), console=console, refresh_per_second=8, transient=False) as live:
        stats = publish(
            events,
            settings,
            rate=events_rate,
            on_progress=lambda s: live.update(line(s)),
            stop=stop,
        )
    if not console.is_terminal:
        console.line()
    verdict = "[green]all acknowledged[/]" if stats.ok else f"[red]{stats.failed:,} failed[/]"
    console.print(
        f"published {stats.sent:,} events in {stats.seconds:.1f} s "
        f"({stats.acked / max(stats.seconds, 1e-9):,.0f} acked/s): {verdict}"
        + ("" if events_rate is None else f"; target rate {events_rate:,.0f}/s")
    )
    for error in stats.errors[:5]:
        console.print(f"  [red]{error}[/]")
    if not stats.ok:
        raise typer.Exit(1)
