from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from rich.console import Console

from cli.views import render, row_from
from schemas.dead_letters import DeadLetter
from schemas.predictions import ChurnPrediction


def test_prediction_row_shows_probability_and_latency() -> None:
    now = datetime.now(UTC)
    p = ChurnPrediction(
        event_id="e1",
        customer_id="c1",
        churn_probability=0.8123,
        churn=True,
        threshold=0.5,
        model_version="v1",
        scored_at=now,
        event_time=now - timedelta(milliseconds=42),
    )
    row = row_from(p.model_dump_json().encode(), [], dlq=False)
    assert row.label == "churn"
    assert row.cells[0] == "c1"
    assert row.cells[1] == "0.812"
    assert row.cells[-1] == "42 ms"


def test_dead_letter_row_and_table() -> None:
    letter = DeadLetter(
        error_type="invalid_json", error_message="bad", source_topic="t", source_partition=2, source_offset=9
    )
    row = row_from(b"{oops", letter.headers(), dlq=True)
    assert row.label == "invalid_json"
    assert row.cells[2] == "t[2]@9"
    console = Console(record=True, width=200)
    console.print(render("dlq", True, [row], Counter({"invalid_json": 1}), 1))
    assert "invalid_json" in console.export_text()


def test_records_without_the_contract_are_labelled_not_crashing() -> None:
    assert row_from(b"nope", None, dlq=False).label == "invalid"
    assert row_from(b"nope", None, dlq=True).label == "unknown"
