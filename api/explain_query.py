"""``?explain=true&top=3&down=0``: whether a scoring request asks for reason codes, and how many.

The query string is read only when a request has one, so ``/predict`` without it
does no extra work; the parameters are documented in OpenAPI by
:data:`EXPLAIN_PARAMETERS`. A bad value is a 422 naming the parameter, even
when ``explain`` is false (which makes ``top`` and ``down`` moot).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from api.errors import ApiError
from schemas.features import FEATURES, SCHEMA_VERSION
from schemas.predictions import REASONS_EXAMPLE

#: At most this many reasons each way: one per wire feature.
MAX_REASONS = len(FEATURES)
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})


@dataclass(frozen=True)
class ExplainQuery:
    """Reasons asked for: the ``top`` pushing churn up, then the ``down`` pushing it down."""

    top: int = 3
    down: int = 0


def read_explain(query_string: bytes) -> ExplainQuery | None:
    """The reasons a request's query string asks for, or ``None`` for none; ApiError(422) if invalid."""
    if not query_string:
        return None
    params = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
    flag = params.get("explain", "false").strip().lower()
    if flag not in _TRUE and flag not in _FALSE:
        raise _invalid("explain", "must be true or false")
    top = _count(params, "top", 3, 1)
    down = _count(params, "down", 0, 0)
    return None if flag in _FALSE else ExplainQuery(top, down)


def _count(params: dict[str, str], name: str, default: int, least: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise _invalid(name, "must be an integer") from None
    if not least <= value <= MAX_REASONS:
        raise _invalid(name, f"must be between {least} and {MAX_REASONS}")
    return value


def _invalid(name: str, reason: str) -> ApiError:
    return ApiError(
        422,
        "validation_error",
        "1 invalid field",
        extra={"errors": [{"field": f"query.{name}", "reason": reason, "type": "query_parameter"}]},
    )


#: OpenAPI ``parameters`` of the scoring routes (read by :func:`read_explain`, not by FastAPI).
EXPLAIN_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "explain",
        "in": "query",
        "required": False,
        "description": "Add `reasons` to each prediction: the features pushing churn up (and down, with "
        "`down`), each with the customer's value and its signed log-odds contribution. A model that "
        "cannot be explained exactly answers `reasons: null` and says why in `reasons_unavailable`.",
        "schema": {"type": "boolean", "default": False},
    },
    {
        "name": "top",
        "in": "query",
        "required": False,
        "description": "With explain=true: how many reasons pushing churn up, strongest first.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_REASONS, "default": 3},
    },
    {
        "name": "down",
        "in": "query",
        "required": False,
        "description": "With explain=true: how many reasons pushing churn down, after the others.",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_REASONS, "default": 0},
    },
]

_PREDICTION_EXAMPLE: dict[str, Any] = {
    "event_id": "3f1c9a6e2b7d4e0f8a5c1d2e3f4a5b6c",
    "customer_id": "7590-VHVEG",
    "churn_probability": 0.8123,
    "churn": True,
    "threshold": 0.42,
    "model_version": "20261126T070000Z-1a2b3c",
    "scored_at": "2026-11-26T07:00:01.250000+00:00",
    "event_time": "2026-11-26T07:00:00+00:00",
    "schema_version": SCHEMA_VERSION,
}
#: ``examples`` of a 200 answer of ``/predict``: without and with reasons, and without a decomposition.
PREDICTION_EXAMPLES: dict[str, Any] = {
    "plain": {"summary": "Without explain", "value": _PREDICTION_EXAMPLE},
    "explained": {
        "summary": "With ?explain=true (top 3)",
        "value": {**_PREDICTION_EXAMPLE, "reasons": REASONS_EXAMPLE},
    },
    "unexplainable": {
        "summary": "With ?explain=true, a model that serves no reasons",
        "value": {
            **_PREDICTION_EXAMPLE,
            "reasons": None,
            "reasons_unavailable": "a random forest averages its trees' probabilities; "
            "its log-odds has no exact split by feature",
        },
    },
}


def batch_examples() -> dict[str, Any]:
    """``examples`` of a 200 answer of ``/predict/batch`` (one prediction each)."""
    return {
        name: {
            "summary": example["summary"],
            "value": {
                "model_version": _PREDICTION_EXAMPLE["model_version"],
                "count": 1,
                "predictions": [example["value"]],
            },
        }
        for name, example in PREDICTION_EXAMPLES.items()
    }
