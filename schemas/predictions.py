"""The output contract: one :class:`ChurnPrediction` per scored event, and the one builder of its payload.

The stream engines, the REST API and the benchmark peer all build prediction
payloads with :func:`prediction_payloads`, column-wise, as plain dicts that
orjson writes without a second validation; :class:`ChurnPrediction` describes
the same fields for readers (``churn consume``, OpenAPI, tests).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.features import SCHEMA_VERSION


class ChurnPrediction(BaseModel):
    """One prediction on the ``churn-predictions`` topic (key = ``customer_id``)."""

    model_config = ConfigDict(protected_namespaces=())

    event_id: str
    customer_id: str
    churn_probability: float = Field(ge=0.0, le=1.0)
    churn: bool
    threshold: float = Field(ge=0.0, le=1.0)
    model_version: str
    scored_at: datetime
    event_time: datetime | None = None
    schema_version: int = SCHEMA_VERSION

    @field_validator("churn_probability")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be finite")
        return value


def prediction_payloads(
    event_ids: Sequence[str],
    customer_ids: Sequence[str],
    event_times: Sequence[datetime | str | None],
    probabilities: Sequence[float],
    threshold: float,
    model_version: str,
    scored_at: datetime | str,
) -> list[dict[str, Any]]:
    """One :class:`ChurnPrediction` payload per scored event, the columns given in the same order.

    ``churn`` is ``probability >= threshold``. Times pass through as given: datetimes, which
    orjson writes in C, or the same ISO 8601 text (``datetime.isoformat()``) for a serializer
    that takes no datetime, or, for ``scored_at``, formatted once for a whole batch.
    """
    rows = zip(event_ids, customer_ids, event_times, probabilities, strict=True)
    return [
        {
            "event_id": event_id,
            "customer_id": customer_id,
            "churn_probability": probability,
            "churn": probability >= threshold,
            "threshold": threshold,
            "model_version": model_version,
            "scored_at": scored_at,
            "event_time": event_time,
            "schema_version": SCHEMA_VERSION,
        }
        for event_id, customer_id, event_time, probability in rows
    ]
