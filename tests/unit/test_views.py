"""``churn consume``'s rows and tables, including records written to attack the terminal."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from cli.console import printable
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


# Record text written to break or fool a terminal: rich markup (an unbalanced closing tag made
# rich raise MarkupError), ANSI colour and cursor sequences, an OSC title change and an OSC 8
# hyperlink, a bell, a bidi override that reverses what follows, zero-width and NUL characters.
HOSTILE = [
    "[/]",
    "[bold red]fake[/] alert",
    "[link=https://evil.example]click[/link]",
    "\x1b[31mred\x1b[0m",
    "\x1b[2J\x1b[Hcleared",
    "\x1b]0;owned title\x07",
    "\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\",
    "\x9b31m",  # C1 CSI
    "abc\u202edcba.exe",
    "zero\u200bwidth\u2066isolate\u2069",
    "nul\x00byte",
    "line\u2028separator",
]
ESCAPE_CONTROLS = ("\x1b", "\x9b", "\x07", "\x00", "\u202e", "\u200b", "\u2066", "\u2028")


def _rendered(console: Console) -> str:
    return console.export_text(styles=False)


@pytest.mark.parametrize("text", HOSTILE)
def test_a_hostile_prediction_prints_as_written(text: str) -> None:
    now = datetime.now(UTC)
    p = ChurnPrediction.model_construct(
        event_id=text,
        customer_id=text,
        churn_probability=0.5,
        churn=False,
        threshold=0.5,
        model_version=text,
        scored_at=now,
        event_time=None,
    )
    row = row_from(p.model_dump_json().encode(), [], dlq=False)
    console = Console(record=True, width=400, force_terminal=True, color_system="truecolor")
    console.print(render("churn-predictions", False, [row], Counter({row.label: 1}), 1))  # no MarkupError
    shown = _rendered(console)
    assert not any(c in shown for c in ESCAPE_CONTROLS), repr(shown)
    visible = text[:12]
    assert printable(visible).replace("\\[", "[") in shown  # the text, escaped, not interpreted


@pytest.mark.parametrize("text", HOSTILE)
def test_a_hostile_dead_letter_prints_as_written(text: str) -> None:
    letter = DeadLetter(
        error_type=text[:40],
        error_message=text,
        source_topic=text[:40],
        source_partition=0,
        source_offset=1,
    )
    row = row_from(text.encode("utf-8", "surrogatepass"), letter.headers(), dlq=True)
    console = Console(record=True, width=400, force_terminal=True, color_system="truecolor")
    console.print(render(text, True, [row], Counter({row.label: 3}), 3))
    raw = console.export_text(styles=True, clear=False)  # with the styles rich itself added
    shown = _rendered(console)
    assert not any(c in shown for c in ESCAPE_CONTROLS), repr(shown)
    assert "evil.example\x1b" not in raw
    assert "]8;;https://evil" not in raw.replace("\\x1b]8;;https://evil", "")


def test_printable_keeps_ordinary_text_unchanged() -> None:
    for text in ("c-42", "Müller & Søn", "客户 7", "0.5", "a b\xa0c"):
        assert printable(text) == text
    assert printable("\x1b[31m") == "\\x1b[31m"
    assert printable("\u202e") == "\\u202e"
    assert printable("[/]") == "\\[/]"
