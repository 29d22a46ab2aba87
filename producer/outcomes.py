"""Observed outcomes to publish on ``customer-outcomes``: scheduled after their events, or read from a CSV.

``churn produce --outcomes`` publishes each customer's event and, ``delay_s`` later,
the outcome the labelled source gives for that customer (for synthetic customers, the
label the generator drew — the process training learns from), for a share of the
customers chosen at random with a seeded generator. :class:`OutcomeSchedule` holds
the outcomes that are not due yet. ``churn produce --outcomes-only --csv FILE`` reads
real labels (``customerID`` and ``Churn`` columns) with :func:`csv_outcomes`.
"""

from __future__ import annotations

import csv
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.contract import rejection_of
from schemas.outcomes import CustomerOutcome


@dataclass(frozen=True)
class LabelledEvent:
    """An event to publish and the outcome its customer will be observed with."""

    event: dict[str, Any]
    churned: bool


def outcome_payload(customer_id: str, churned: bool, observed_at: datetime) -> dict[str, Any]:
    """The wire form of one :class:`~schemas.outcomes.CustomerOutcome`."""
    return {"customer_id": customer_id, "churned": churned, "observed_at": observed_at.isoformat()}


class OutcomeSchedule:
    """Outcomes waiting to be published: each ``delay_s`` after its event, for a ``share`` of customers.

    The delay is the same for every outcome, so they fall due in the order they were added.
    """

    def __init__(self, delay_s: float, share: float = 1.0, seed: int = 7) -> None:
        if delay_s < 0:
            raise ValueError("the outcome delay must not be negative")
        if not 0.0 <= share <= 1.0:
            raise ValueError("the share of observed outcomes must be between 0 and 1")
        self.delay_s = delay_s
        self.share = share
        self._rng = random.Random(seed)
        self._waiting: deque[tuple[float, dict[str, Any]]] = deque()

    def add(self, customer_id: str, churned: bool, published_at: float) -> bool:
        """Schedule the outcome of an event published at ``published_at`` (epoch s); False if the
        customer is among those whose outcome is never observed."""
        if self._rng.random() >= self.share:
            return False
        due = published_at + self.delay_s
        observed_at = datetime.fromtimestamp(due, UTC)
        self._waiting.append((due, outcome_payload(customer_id, churned, observed_at)))
        return True

    def due(self, now: float) -> list[dict[str, Any]]:
        """The outcomes due at ``now`` (removed from the schedule), oldest first."""
        out = []
        while self._waiting and self._waiting[0][0] <= now:
            out.append(self._waiting.popleft()[1])
        return out

    def next_due(self) -> float | None:
        """When the next outcome falls due (epoch s), or None if none waits."""
        return self._waiting[0][0] if self._waiting else None

    def __len__(self) -> int:
        return len(self._waiting)


class OutcomeFileError(ValueError):
    """An outcomes CSV that cannot be published as it is; the message lists every bad row."""


_ID_COLUMNS = ("customerID", "customer_id")
_LABEL_COLUMNS = ("Churn", "churn", "churned")


def csv_outcomes(path: Path | str, observed_at: datetime | None = None) -> Iterator[dict[str, Any]]:
    """The outcomes of a CSV with a customer id (``customerID``) and a label (``Churn``) column.

    Labels take the forms the outcome schema accepts (``Yes``/``No``, ``1``/``0``,
    ``true``/``false``). An ``observed_at`` column is used when present, else
    ``observed_at`` (default: now). Every row is validated before the first is yielded;
    :class:`OutcomeFileError` names each bad row.
    """
    when = (observed_at or datetime.now(UTC)).isoformat()
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        id_column = next((c for c in _ID_COLUMNS if c in columns), None)
        label_column = next((c for c in _LABEL_COLUMNS if c in columns), None)
        if id_column is None or label_column is None:
            raise OutcomeFileError(
                f"{path}: needs a customer id column ({' or '.join(_ID_COLUMNS)}) and a label column "
                f"({' or '.join(_LABEL_COLUMNS)}); found {columns}"
            )
        payloads: list[dict[str, Any]] = []
        problems: list[str] = []
        for number, raw in enumerate(reader, start=1):
            row = {k.strip(): v for k, v in raw.items() if k is not None}
            body = {"customer_id": row[id_column], "churned": row[label_column]}
            if row.get("observed_at", "").strip():
                body["observed_at"] = row["observed_at"]
            try:
                outcome = CustomerOutcome.model_validate(body)
            except ValidationError as exc:
                rejection = rejection_of(exc.errors(include_url=False))  # type: ignore[arg-type]
                problems.append(f"row {number}: {rejection.message}")
                continue
            stamp = outcome.observed_at.isoformat() if outcome.observed_at else when
            payloads.append(
                {"customer_id": outcome.customer_id, "churned": outcome.churned, "observed_at": stamp}
            )
    if problems:
        shown = "\n".join(f"  - {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise OutcomeFileError(f"{path}: {len(problems)} invalid row(s)\n{shown}{more}")
    yield from payloads
