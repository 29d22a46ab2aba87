"""The wire contract: event, prediction and dead-letter models, features, settings."""

from schemas.events import (
    ChurnPrediction,
    CustomerEvent,
    CustomerFeatures,
    DeadLetter,
    PredictRequest,
)
from schemas.features import CATEGORIES, FEATURES, NUMERIC_RANGES, SCHEMA_VERSION

__all__ = [
    "CATEGORIES",
    "FEATURES",
    "NUMERIC_RANGES",
    "SCHEMA_VERSION",
    "ChurnPrediction",
    "CustomerEvent",
    "CustomerFeatures",
    "DeadLetter",
    "PredictRequest",
]
