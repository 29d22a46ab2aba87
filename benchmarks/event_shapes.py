"""The shapes of events ``churn bench stream --shapes`` preloads: what real producers send.

The same synthetic customers, written five ways:

- ``canonical``: what ``churn produce`` writes (snake_case keys, JSON numbers, ``event_id``,
  ``event_time``), keyed by ``customer_id``;
- ``telco``: the telco CSV's column names, JSON numbers, ids, keyed;
- ``strings``: snake_case keys, every value as text (``"29.85"``), ids, keyed;
- ``idless``: canonical without ``event_id`` and ``event_time``, keyed;
- ``mix``: telco rows exactly as ``csv.DictReader`` yields an export (column names, every value as
  text, the ``Churn`` label, no ids or time), a third of them unkeyed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import orjson

from producer.events import synthetic_events
from schemas.features import TELCO_ALIASES

Record = tuple[bytes | None, bytes]

_IDS: Final = ("event_id", "event_time")


def _telco(event: dict[str, Any]) -> dict[str, Any]:
    return {TELCO_ALIASES.get(name, name): value for name, value in event.items()}


def _as_text(event: dict[str, Any]) -> dict[str, Any]:
    return {name: "" if value is None else str(value) for name, value in event.items()}


def _without_ids(event: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in event.items() if name not in _IDS}


def _csv_row(event: dict[str, Any]) -> dict[str, Any]:
    return _telco(_as_text(_without_ids(event))) | {"Churn": "No"}


SHAPES: Final[dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]]] = {
    "canonical": ("snake_case, JSON numbers, ids and time, keyed", lambda event: event),
    "telco": ("telco column names, JSON numbers, ids and time, keyed", _telco),
    "strings": ("snake_case, every value as text, ids and time, keyed", _as_text),
    "idless": ("snake_case, JSON numbers, no event_id/event_time, keyed", _without_ids),
    "mix": ("telco CSV rows as csv.DictReader yields them: text, no ids, a third unkeyed", _csv_row),
}


def shapes_of(names: str) -> list[str]:
    """The shapes named in a comma-separated list (``all`` for every one), in the order above."""
    wanted = {name.strip() for name in names.split(",") if name.strip()}
    if "all" in wanted:
        return list(SHAPES)
    unknown = wanted - set(SHAPES)
    if unknown:
        raise ValueError(f"unknown shapes {sorted(unknown)}; choose from {list(SHAPES)} or all")
    return [name for name in SHAPES if name in wanted]


def records(shape: str, n: int, seed: int = 5) -> list[Record]:
    """``n`` events of ``shape`` as ``(key, value)`` pairs, ready to produce."""
    reshape = SHAPES[shape][1]
    out: list[Record] = []
    for index, event in enumerate(synthetic_events(n, seed=seed)):
        unkeyed = shape == "mix" and index % 3 == 0
        out.append((None if unkeyed else event["customer_id"].encode(), orjson.dumps(reshape(event))))
    return out
