"""What ``churn quality`` reads: prediction and outcome records, decoded or refused with a reason.

:func:`read_prediction` and :func:`read_outcome` turn one raw Kafka record into the
few numbers the quality job keeps (:class:`PredictionSeen`, :class:`OutcomeSeen`), or
into a :class:`Refused` with a dead-letter error type and message, under the rules of
the events topic: the same byte-level checks (empty, oversize, not UTF-8, not JSON,
NaN, not an object, repeated keys, shared with :mod:`scorer.batch`) and the pydantic
models for the fields. Nothing here raises on bad input. Times are epoch seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from pydantic import ValidationError

from kafka_io.records import RawRecord
from schemas import dead_letters
from schemas.contract import Rejection, parse_object, rejection_of
from schemas.features import SCHEMA_VERSION
from schemas.outcomes import CustomerOutcome
from schemas.predictions import ChurnPrediction

CHAMPION: Final = "champion"
CHALLENGER: Final = "challenger"
ROLES: Final = (CHAMPION, CHALLENGER)
#: A header that names a prediction's role; without it, the topic does (shadow topic = challenger).
ROLE_HEADER: Final = "role"


@dataclass(frozen=True, slots=True)
class PredictionSeen:
    """The part of a :class:`~schemas.predictions.ChurnPrediction` the quality job keeps."""

    customer_id: str
    model_version: str
    probability: float
    threshold: float
    event_time: float
    scored_at: float
    role: str


@dataclass(frozen=True, slots=True)
class OutcomeSeen:
    """One observed outcome: ``churned`` as observed at ``observed_at``."""

    customer_id: str
    churned: bool
    observed_at: float


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a record cannot be used: a dead-letter ``error_type`` and a message naming the field."""

    error_type: str
    message: str


def read_prediction(record: RawRecord, default_role: str, max_bytes: int) -> PredictionSeen | Refused:
    """A prediction record; its role comes from a ``role`` header, else ``default_role``.

    A prediction without ``event_time`` is placed at the record's timestamp, else at ``scored_at``.
    """
    obj = parse_object(record.value, max_bytes)
    if isinstance(obj, Rejection):
        return Refused(obj.error_type, obj.message)
    try:
        prediction = ChurnPrediction.model_validate(obj)
    except ValidationError as exc:
        return _invalid(exc)
    scored_at = prediction.scored_at.timestamp()
    event_time = _time_of(prediction.event_time, record, fallback=scored_at)
    role = _header(record, ROLE_HEADER) or default_role
    if role not in ROLES:
        return Refused(dead_letters.INVALID_VALUE, f"{ROLE_HEADER} header: {role!r} is not one of {ROLES}")
    return PredictionSeen(
        customer_id=prediction.customer_id,
        model_version=prediction.model_version,
        probability=prediction.churn_probability,
        threshold=prediction.threshold,
        event_time=event_time,
        scored_at=scored_at,
        role=role,
    )


def read_outcome(record: RawRecord, max_bytes: int, now: float, max_skew_s: float) -> OutcomeSeen | Refused:
    """An outcome record; ``observed_at`` defaults to the record's timestamp and may not lie more than
    ``max_skew_s`` ahead of ``now``."""
    obj = parse_object(record.value, max_bytes)
    if isinstance(obj, Rejection):
        return Refused(obj.error_type, obj.message)
    try:
        outcome = CustomerOutcome.model_validate(obj)
    except ValidationError as exc:
        return _invalid(exc)
    if outcome.schema_version > SCHEMA_VERSION:
        return Refused(
            dead_letters.UNSUPPORTED_SCHEMA_VERSION,
            f"schema_version: {outcome.schema_version} is newer than this job's {SCHEMA_VERSION}",
        )
    observed_at = _time_of(outcome.observed_at, record, fallback=now)
    if observed_at > now + max_skew_s:
        when = (
            outcome.observed_at.isoformat() if outcome.observed_at else f"record timestamp {observed_at:.3f}"
        )
        return Refused(
            dead_letters.EVENT_FROM_FUTURE,
            f"observed_at: {when} is more than {max_skew_s:g} s ahead of the quality job's clock",
        )
    return OutcomeSeen(outcome.customer_id, outcome.churned, observed_at)


def _invalid(exc: ValidationError) -> Refused:
    rejection = rejection_of(exc.errors(include_url=False))  # type: ignore[arg-type]
    return Refused(rejection.error_type, rejection.message)


def _time_of(value: datetime | None, record: RawRecord, fallback: float) -> float:
    if value is not None:
        return value.timestamp()
    if record.timestamp is not None and math.isfinite(record.timestamp) and record.timestamp > 0:
        return float(record.timestamp)
    return fallback


def _header(record: RawRecord, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name and value is not None:
            return value.decode("utf-8", "replace")
    return None
