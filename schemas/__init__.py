"""The wire contract: event, prediction, outcome and dead-letter models, features and vocabularies."""

from schemas.dead_letters import DeadLetter
from schemas.events import CustomerEvent, CustomerFeatures, PredictRequest
from schemas.features import CATEGORIES, FEATURES, NUMERIC_RANGES, SCHEMA_VERSION
from schemas.outcomes import CustomerOutcome
from schemas.predictions import ChurnPrediction, Reason, prediction_payloads

__all__ = [
    "CATEGORIES",
    "FEATURES",
    "NUMERIC_RANGES",
    "SCHEMA_VERSION",
    "ChurnPrediction",
    "CustomerEvent",
    "CustomerFeatures",
    "CustomerOutcome",
    "DeadLetter",
    "PredictRequest",
    "Reason",
    "prediction_payloads",
]
