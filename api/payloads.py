"""Response bodies that only the REST API has (the wire contract lives in :mod:`schemas`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from schemas.predictions import ChurnPrediction


class BatchPredictions(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_version: str
    count: int
    predictions: list[ChurnPrediction]


class Health(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    status: Literal["ok", "no_model"]
    model_loaded: bool
    model_version: str | None
    uptime_s: float


class Live(BaseModel):
    status: Literal["alive"]


class Ready(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    status: Literal["ready"]
    model_version: str


class ModelSummary(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    version: str
    selected_model: str
    threshold: float
    created_at: str
    schema_version: int | None
    selection: str | None
    metrics: dict[str, dict[str, float]]
    features: list[str]
    training_data: dict[str, Any]
    fast_path: bool
    #: Whether ``?explain=true`` serves reason codes with this model, and if not, why.
    reasons_available: bool
    reasons_unavailable: str | None
    loaded_at: datetime | None


class ServiceInfo(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    service: str
    version: str
    model_version: str | None
    auth_required: bool
    docs: str
    endpoints: list[str]


class Reload(BaseModel):
    status: Literal["loaded", "unchanged", "no_model"]
    serving: str | None
    previous: str | None
    candidate: str | None
    error: str | None
    seconds: float
    fallback: bool
