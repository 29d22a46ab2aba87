"""The wire contract: event, prediction, outcome and dead-letter models, features and vocabularies."""

from schemas.contract import Rejection, read_event, validate_event
from schemas.dead_letters import DeadLetter
from schemas.events import CustomerEvent
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
    "CustomerOutcome",
    "DeadLetter",
    "Reason",
    "Rejection",
    "prediction_payloads",
    "read_event",
    "validate_event",
]
