"""Turning prediction and dead-letter records into rows and rich tables (``churn consume``).

Everything taken from a record — ids, versions, error types and messages, the
preview of a dead letter's bytes — goes through :func:`cli.console.printable`:
a record cannot inject rich markup or terminal escape sequences into the view.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import ValidationError
from rich.table import Table

from cli.console import printable
from schemas.dead_letters import DeadLetter
from schemas.predictions import ChurnPrediction


@dataclass(frozen=True)
class ConsumedRow:
    cells: tuple[str, ...]
    label: str  # churn / no_churn / an error_type


PREDICTION_COLUMNS = ("customer_id", "probability", "churn", "model", "event_id", "latency")
DLQ_COLUMNS = ("error_type", "error_message", "source", "bytes", "preview")


def row_from(value: bytes | None, headers: Iterable[tuple[str, bytes]] | None, dlq: bool) -> ConsumedRow:
    if dlq:
        try:
            letter = DeadLetter.from_headers(list(headers or []))
        except ValidationError:
            return ConsumedRow(("?", "record without dead-letter headers", "", "", ""), "unknown")
        preview = (value or b"")[:40].decode("utf-8", "replace")
        return ConsumedRow(
            (
                printable(letter.error_type),
                printable(letter.error_message[:70]),
                printable(f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"),
                str(len(value or b"")),
                printable(preview),
            ),
            letter.error_type,
        )
    try:
        p = ChurnPrediction.model_validate_json(value or b"")
    except ValidationError:
        return ConsumedRow(("?", "", "", "", "not a ChurnPrediction", ""), "invalid")
    latency = ""
    if p.event_time is not None:
        latency = f"{(p.scored_at - p.event_time).total_seconds() * 1000:.0f} ms"
    return ConsumedRow(
        (
            printable(p.customer_id),
            f"{p.churn_probability:.3f}",
            "[red]yes[/]" if p.churn else "no",
            printable(p.model_version[:24]),
            printable(p.event_id[:12]),
            latency,
        ),
        "churn" if p.churn else "no_churn",
    )


def render(topic: str, dlq: bool, rows: Iterable[ConsumedRow], totals: Counter[str], seen: int) -> Table:
    summary = ", ".join(f"{printable(k)} {v:,}" for k, v in totals.most_common(6))
    title = f"{printable(topic)} — {seen:,} records" + (f" ({summary})" if summary else "")
    table = Table(title=title, expand=False)
    for column in DLQ_COLUMNS if dlq else PREDICTION_COLUMNS:
        table.add_column(column, overflow="fold" if column == "error_message" else "ellipsis")
    for row in rows:
        table.add_row(*row.cells)
    return table
