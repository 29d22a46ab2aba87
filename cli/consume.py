"""``churn consume``: a live table of churn-predictions (or of the dead-letter topic).

The downstream-consumer example and a debugging tool: it reads with its own
throw-away consumer group, so it never moves anyone else's offsets.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter, deque

import typer
from rich.live import Live

from cli.console import console, overridden, printable, stop_on_signals
from cli.kafka_flags import KAFKA_OPTION, with_kafka_options


def command(
    ctx: typer.Context,
    dlq: bool = typer.Option(False, "--dlq", help="Show the dead-letter topic instead."),
    from_beginning: bool = typer.Option(False, "--from-beginning", help="Start at the oldest record."),
    rows: int = typer.Option(20, "--rows", help="Rows in the table (newest first)."),
    count: int | None = typer.Option(None, "--count", "-n", help="Exit after N records."),
    timeout: float | None = typer.Option(None, "--timeout", help="Exit after this many seconds."),
    bootstrap: str | None = typer.Option(None, "--bootstrap", "-b", help="Kafka bootstrap servers."),
    topic: str | None = typer.Option(None, "--topic", help="Override the topic to read."),
    kafka_option: list[str] = KAFKA_OPTION,
) -> None:
    """Print a live table of records as they arrive; Ctrl-C stops."""
    # The Kafka client and the wire models load when the command runs, not for `churn --help`.
    from confluent_kafka import Consumer

    from cli.views import ConsumedRow, render, row_from
    from kafka_io.client_config import confluent_consumer

    settings = overridden(ctx.obj, kafka_bootstrap_servers=bootstrap)
    settings = with_kafka_options(settings, kafka_option, ("consumer",))
    name = topic or (settings.dlq_topic if dlq else settings.predictions_topic)
    start = {"auto.offset.reset": "earliest" if from_beginning else "latest"}  # the flag wins
    settings = overridden(settings, kafka_consumer_options={**settings.kafka_consumer_options, **start})
    consumer = Consumer(confluent_consumer(settings, f"churn-consume-{uuid.uuid4().hex[:8]}"))
    consumer.subscribe([name])
    recent: deque[ConsumedRow] = deque(maxlen=rows)
    totals: Counter[str] = Counter()
    seen = 0
    stop = stop_on_signals()
    deadline = time.monotonic() + timeout if timeout else None
    try:
        with Live(render(name, dlq, recent, totals, seen), console=console, refresh_per_second=4) as live:
            while not stop.is_set() and (count is None or seen < count):
                if deadline is not None and time.monotonic() >= deadline:
                    break
                for message in consumer.consume(500, timeout=0.25):
                    if message.error() is not None:
                        continue
                    row = row_from(message.value(), message.headers(), dlq)  # type: ignore[arg-type]
                    recent.appendleft(row)
                    totals[row.label] += 1
                    seen += 1
                    if count is not None and seen >= count:
                        break
                live.update(render(name, dlq, recent, totals, seen))
    finally:
        consumer.close()
    if not console.is_terminal:
        console.line()
    console.print(f"read {seen:,} records from {printable(name)}")
