"""docs/contract.md's table of values is what the contract does: every row is tried."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from producer.events import synthetic_events
from schemas.contract import Rejection, read_event

DOC = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
_ROW = re.compile(r"^\| `(\w+)` \| (absent|`[^`]*`) \| (refused: `(\w+)`|`[^`]*`) \|")


def _rows() -> list[tuple[str, str, str]]:
    table = DOC.read_text(encoding="utf-8").split("## Values", 1)[1].split("\n## ", 1)[0]
    rows = [match.groups()[:3] for line in table.splitlines() if (match := _ROW.match(line))]
    assert len(rows) >= 60
    return rows  # type: ignore[return-value]


@pytest.mark.parametrize(("field", "sent", "verdict"), _rows())
def test_each_row_of_the_table_is_true(field: str, sent: str, verdict: str) -> None:
    record: dict[str, Any] = synthetic_events(1, seed=41)[0]
    if sent == "absent":
        record.pop(field, None)
    else:
        record[field] = json.loads(sent.strip("`"))
    event = read_event(orjson.dumps(record), 64 * 1024)
    if verdict.startswith("refused"):
        assert isinstance(event, Rejection), event
        assert (event.error_type, event.field) == (verdict.split("`")[1], field), event.message
        return
    assert not isinstance(event, Rejection), event.message
    expected = json.loads(verdict.strip("`"))
    value = getattr(event, field)
    if field == "event_time":
        value = value.isoformat()
    assert value == expected and type(value) is type(expected), (value, expected)
