"""The endpoints. ``build_router`` closes over the service state, so a request
does no dependency lookups on the scoring path.

``/predict`` reads the body bytes with the input contract (:mod:`api.bodies`:
the function the stream uses for a record, so the same bytes get the same
verdict), scores the event with ``Predictor.predict_one`` (the compiled numpy
path, microseconds), builds the answer with the stream's own
:func:`schemas.predictions.prediction_payloads` and writes the JSON with orjson,
skipping a second pydantic validation of a response it built itself. An event
without ``event_id`` gets a fresh uuid4 hex, one without ``event_time`` the
time of the request. ``/schemas/{name}.json`` serves the published JSON Schemas.

``?explain=true`` (:mod:`api.explain_query`) adds reason codes through
``Predictor.explain_one`` / ``explain_batch`` (the same probabilities); a model
without an exact decomposition answers ``reasons: null`` and ``reasons_unavailable``.
A request without a query string reads none.

When a challenger is set (``churn models promote VERSION --challenger``), both
scoring routes also score the request with it, after the champion, for the
``churn_shadow_*`` metrics only: the answer never contains the challenger's
probability, and a challenger failure is counted, never answered.

No ``from __future__ import annotations`` here: FastAPI reads the endpoint
annotations at definition time, and the batch limit is a closure variable.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from api.bodies import BodyRules, read_many, read_one
from api.errors import ApiError, error_responses, public_text
from api.explain_query import (
    EXPLAIN_PARAMETERS,
    PREDICTION_EXAMPLES,
    ExplainQuery,
    batch_examples,
    read_explain,
)
from api.payloads import BatchPredictions, Health, Live, ModelSummary, Ready, Reload, ServiceInfo
from api.state import ServiceState
from models.predictor import Predictor
from schemas.events import CustomerEvent
from schemas.json_schema import SCHEMA_NAMES, SchemaName, schema
from schemas.predictions import ChurnPrediction, prediction_payloads

log = logging.getLogger(__name__)


def public_training_data(training_data: Any) -> dict[str, Any]:
    """The manifest's ``training_data`` as clients see it: the source file's name, not its path."""
    if not isinstance(training_data, dict):
        return {}
    source = training_data.get("source")
    if isinstance(source, str):
        return {**training_data, "source": source.replace("\\", "/").rsplit("/", 1)[-1]}
    return dict(training_data)


#: The request body of /predict in the OpenAPI document (the routes read the bytes themselves).
EVENT_REF = "#/components/schemas/CustomerEvent"


def _json_body(body_schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": body_schema}}}}


def _json(content: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code, media_type="application/json")


def predict_one(
    predictor: Predictor, customer: CustomerEvent, explain: ExplainQuery | None = None
) -> dict[str, Any]:
    """What ``/predict`` answers for one validated event: its prediction payload."""
    if explain is None or not predictor.explainable:
        (payload,) = predict_many(predictor, [customer], [predictor.predict_one(customer)], explain)
        return payload
    probability, reasons = predictor.explain_one(customer, top=explain.top, down=explain.down)
    (payload,) = predict_many(predictor, [customer], [probability], explain, [reasons])
    return payload


def predict_batch(
    predictor: Predictor, customers: Sequence[CustomerEvent], explain: ExplainQuery | None = None
) -> list[dict[str, Any]]:
    """What ``/predict/batch`` answers for validated events: their payloads, in order."""
    if explain is None or not predictor.explainable:
        probabilities = predictor.predict_batch(customers).tolist()
        return predict_many(predictor, customers, probabilities, explain)
    explained = predictor.explain_batch(customers, top=explain.top, down=explain.down)
    return predict_many(predictor, customers, explained.probability.tolist(), explain, explained.reasons)


def predict_many(
    predictor: Predictor,
    customers: Sequence[CustomerEvent],
    probabilities: Sequence[float],
    explain: ExplainQuery | None = None,
    reasons: Sequence[Sequence[Mapping[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    """The prediction payloads of validated events scored with ``probabilities``, in order.

    An event without ``event_id`` gets a fresh uuid4 hex; one without ``event_time``, now.
    Asked to explain (``explain``) without ``reasons``: the model serves none, and each
    payload says why.
    """
    now = datetime.now(UTC)
    return prediction_payloads(
        [customer.event_id or uuid.uuid4().hex for customer in customers],
        [customer.customer_id for customer in customers],
        [customer.event_time or now for customer in customers],
        probabilities,
        predictor.threshold,
        predictor.version,
        now,
        reasons=reasons,
        reasons_unavailable=predictor.no_reasons_because if explain is not None and reasons is None else None,
    )


def build_router(state: ServiceState) -> APIRouter:
    router = APIRouter()
    live = state.live
    metrics = state.metrics
    settings = state.settings
    max_batch = settings.api_max_batch
    schemas = {name: orjson.dumps(schema(name)) for name in SCHEMA_NAMES}
    rules = BodyRules(settings.max_event_bytes, settings.max_event_time_skew_s, max_batch)
    batch_body = {"type": "array", "items": {"$ref": EVENT_REF}, "minItems": 1, "maxItems": max_batch}
    no_model = "no verified model is loaded yet; train and promote one (`churn train`)"

    def current() -> Predictor:
        predictor = live.predictor
        if predictor is None:
            raise ApiError(503, "no_model", no_model, headers={"Retry-After": "5"})
        return predictor

    def shadow(champion: Predictor, customers: Sequence[CustomerEvent]) -> None:
        """Score ``customers`` with the challenger for its metrics; never raises."""
        challenger = state.challenger.predictor if state.challenger is not None else None
        if challenger is None or challenger.version == champion.version:
            return
        version = challenger.version
        try:
            probabilities = challenger.predict_batch(customers)
        except Exception as exc:  # the challenger never changes what the client gets
            metrics.shadow.failures.labels(model_version=version).inc(len(customers))
            log.warning("challenger %s failed in shadow: %s: %s", version, type(exc).__name__, exc)
            return
        metrics.shadow.predictions.labels(model_version=version).inc(len(customers))
        metrics.shadow.probability.observe_many(probabilities)

    @router.post(
        "/predict",
        response_model=ChurnPrediction,
        summary="Score one customer",
        responses={
            200: {"content": {"application/json": {"examples": PREDICTION_EXAMPLES}}},
            **error_responses(400, 401, 403, 413, 415, 422, 429, 503, 504),
        },
        tags=["scoring"],
        openapi_extra={"parameters": EXPLAIN_PARAMETERS, **_json_body({"$ref": EVENT_REF})},
    )
    async def predict(request: Request) -> Response:
        """Churn probability for one customer; `event_id` and `event_time` are optional.

        The body is read as the stream reads a record (docs/contract.md): a refused body is
        422 (400 if it is not JSON) and each error's `type` is the stream's `error_type`.
        With `?explain=true`, also its reasons (`top` up, `down` down).
        """
        explain = read_explain(request.scope["query_string"])
        customer = read_one(await request.body(), rules)
        predictor = current()  # this request keeps its model even if a reload swaps it
        payload = predict_one(predictor, customer, explain)
        metrics.probability.observe(payload["churn_probability"])
        shadow(predictor, [customer])
        return _json(payload)

    @router.post(
        "/predict/batch",
        response_model=BatchPredictions,
        summary=f"Score up to {max_batch} customers",
        responses={
            200: {"content": {"application/json": {"examples": batch_examples()}}},
            **error_responses(400, 401, 403, 413, 415, 422, 429, 503, 504),
        },
        tags=["scoring"],
        openapi_extra={"parameters": EXPLAIN_PARAMETERS, **_json_body(batch_body)},
    )
    async def predict_batch_route(request: Request) -> Response:
        """Churn probabilities for a list of customers, in order, scored in one vectorized pass.

        Each element is read as one record; errors name it by index (`2.tenure`).
        With `?explain=true`, also each one's reasons, computed for the batch at once.
        """
        explain = read_explain(request.scope["query_string"])
        customers = read_many(await request.body(), rules)
        predictor = current()
        predictions = predict_batch(predictor, customers, explain)
        metrics.probability.observe_many([p["churn_probability"] for p in predictions])
        shadow(predictor, customers)
        return _json(
            {"model_version": predictor.version, "count": len(predictions), "predictions": predictions}
        )

    @router.get("/health", response_model=Health, summary="Status and model version", tags=["health"])
    async def health() -> Response:
        version = live.version
        return _json(
            {
                "status": "ok" if version else "no_model",
                "model_loaded": version is not None,
                "model_version": version,
                "uptime_s": round(time.monotonic() - state.started, 3),
            }
        )

    @router.get("/health/live", response_model=Live, summary="The process answers", tags=["health"])
    async def health_live() -> Response:
        return _json({"status": "alive"})

    @router.get(
        "/health/ready",
        response_model=Ready,
        summary="Ready when a verified model is loaded",
        responses=error_responses(503),
        tags=["health"],
    )
    async def health_ready() -> Response:
        version = live.version
        if version is None:
            raise ApiError(503, "not_ready", no_model)
        return _json({"status": "ready", "model_version": version})

    @router.get(
        "/model",
        response_model=ModelSummary,
        summary="The model in use",
        responses=error_responses(401, 403, 429, 503, 504),
        tags=["model"],
    )
    async def model() -> Response:
        predictor = current()
        manifest = predictor.manifest
        loaded_at = live.loaded_at
        return _json(
            {
                "version": predictor.version,
                "selected_model": predictor.info.selected_model,
                "threshold": predictor.threshold,
                "created_at": predictor.info.created_at,
                "schema_version": manifest.get("schema_version"),
                "selection": manifest.get("selection"),
                "metrics": manifest.get("metrics", {}),
                "features": manifest.get("features", []),
                "training_data": public_training_data(manifest.get("training_data")),
                "fast_path": predictor.fast_path,
                "reasons_available": predictor.explainable,
                "reasons_unavailable": predictor.no_reasons_because,
                "loaded_at": datetime.fromtimestamp(loaded_at, UTC) if loaded_at else None,
            }
        )

    @router.post(
        "/admin/reload",
        response_model=Reload,
        summary="Load the promoted model now",
        responses=error_responses(401, 403, 409, 429, 504),
        tags=["model"],
    )
    async def reload(request: Request) -> Response:
        """Check the registry pointer now; a version refused before is retried."""
        log.info("admin_reload key=%s", request.scope.get("state", {}).get("api_key", "-"))
        result = await asyncio.to_thread(state.reload, True)
        if result.status == "refused":
            raise ApiError(
                409,
                "model_refused",
                public_text(f"the promoted version was refused: {result.error}"),
                extra={"serving": result.serving, "fallback": result.fallback},
            )
        return _json(result.as_dict())

    @router.get(
        "/schemas/{name}.json",
        summary="A published JSON Schema: customer-event, churn-prediction or dead-letter-headers",
        response_class=Response,
        responses={
            200: {"content": {"application/schema+json": {"schema": {"type": "object"}}}},
            **error_responses(401, 403, 422, 429),
        },
        tags=["contract"],
    )
    async def published_schema(name: SchemaName) -> Response:
        return Response(schemas[name], media_type="application/schema+json")

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
        tags=["health"],
    )
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.exposition), media_type=CONTENT_TYPE_LATEST)

    @router.get("/", response_model=ServiceInfo, summary="What this service is", tags=["health"])
    async def root() -> Response:
        return _json(
            {
                "service": "churn-stream API",
                "version": state.package_version,
                "model_version": live.version,
                "auth_required": state.auth_required,
                "docs": "/docs",
                "endpoints": state.endpoints,
            }
        )

    return router
