"""The output contract: one :class:`ChurnPrediction` per scored event, and the one builder of its payload.

The stream engines, the REST API and the benchmark peer all build prediction
payloads with :func:`prediction_payloads`, column-wise, as plain dicts that
orjson writes without a second validation; :class:`ChurnPrediction` describes
the same fields for readers (``churn consume``, OpenAPI, tests).

Reason codes (``reasons``) appear only when a client asks for them (the API's
``?explain=true``, the scorer's ``CHURN_SCORER_EXPLAIN``): the features pushing
the churn probability up, strongest first, then, if asked, those pushing it
down, each with the customer's value and its signed share of the log-odds (the
sign is the direction: positive raises the churn probability). A model without
an exact decomposition serves ``reasons: null`` and says why in
``reasons_unavailable``; it never serves approximate reasons.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)

from schemas.features import SCHEMA_VERSION


class Reason(BaseModel):
    """One reason for one prediction: a feature, the customer's value of it, its log-odds share."""

    feature: str = Field(description="The snake_case wire feature, e.g. `contract`.")
    value: StrictStr | StrictBool | StrictInt | StrictFloat | None = Field(
        description="The customer's value of the feature, as validated (null: a blank `total_charges`)."
    )
    contribution: float = Field(
        description="Signed contribution to the churn log-odds: positive pushes the probability up, "
        "negative down. With the model's base value, all features' contributions sum to its log-odds."
    )

    @field_validator("contribution")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be finite")
        return value


#: An example of ``reasons`` for the OpenAPI document and the JSON Schema.
REASONS_EXAMPLE: list[dict[str, Any]] = [
    {"feature": "contract", "value": "Month-to-month", "contribution": 0.7184},
    {"feature": "tenure", "value": 2, "contribution": 0.6651},
    {"feature": "internet_service", "value": "Fiber optic", "contribution": 0.3307},
]


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
    reasons: list[Reason] | None = Field(
        default=None,
        description="Only when asked for: the features pushing churn up (strongest first), then "
        "those pushing it down if asked; null when the model serves no reasons.",
        examples=[REASONS_EXAMPLE],
    )
    reasons_unavailable: str | None = Field(
        default=None,
        description="Only when reasons were asked for and the model cannot give exact ones: why.",
    )

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
    *,
    reasons: Sequence[Sequence[Mapping[str, Any]]] | None = None,
    reasons_unavailable: str | None = None,
) -> list[dict[str, Any]]:
    """One :class:`ChurnPrediction` payload per scored event, the columns given in the same order.

    ``churn`` is ``probability >= threshold``. Times pass through as given: datetimes, which
    orjson writes in C, or the same ISO 8601 text (``datetime.isoformat()``) for a serializer
    that takes no datetime, or, for ``scored_at``, formatted once for a whole batch.

    ``reasons`` (one list per event, :class:`Reason`-shaped dicts) adds ``reasons``;
    ``reasons_unavailable`` instead adds ``reasons: null`` and that text; with neither,
    the payload has no reason fields.
    """
    payloads = _payloads(
        event_ids, customer_ids, event_times, probabilities, threshold, model_version, scored_at
    )
    if reasons is not None:
        for payload, why in zip(payloads, reasons, strict=True):
            payload["reasons"] = why
    elif reasons_unavailable is not None:
        for payload in payloads:
            payload["reasons"] = None
            payload["reasons_unavailable"] = reasons_unavailable
    return payloads


def _payloads(
    event_ids: Sequence[str],
    customer_ids: Sequence[str],
    event_times: Sequence[datetime | str | None],
    probabilities: Sequence[float],
    threshold: float,
    model_version: str,
    scored_at: datetime | str,
) -> list[dict[str, Any]]:
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
