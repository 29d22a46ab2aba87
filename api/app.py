"""The application factory and its lifespan.

``create_app(settings)`` only wires things together; the model is loaded by the
lifespan when the server starts (in a worker thread, since unpickling blocks),
and a background task polls the registry pointer every
``settings.model_poll_interval_s`` seconds for a newly promoted version.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from importlib import metadata
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry
from starlette.middleware.cors import CORSMiddleware

from api.auth import KeyStore
from api.errors import install_error_handlers
from api.middleware import API_KEY_HEADER, PUBLIC_PATHS, ServiceMiddleware
from api.rate_limit import FailureThrottle, RateLimit
from api.routes import build_router
from api.state import ServiceState
from config.settings import Settings
from models.live import LiveModel
from models.registry import ModelRegistry
from monitoring.metrics import ApiMetrics
from schemas.json_schema import openapi_components

log = logging.getLogger(__name__)

#: Routes whose POST body must be JSON.
JSON_ROUTES = ("/predict", "/predict/batch")
#: Where /docs and /redoc load Swagger UI's and ReDoc's files from: this service, not a CDN, so the
#: pages work without internet access (the files come pinned with the fastapi-offline package).
DOCS_ASSETS = "/docs-assets"


def _package_version() -> str:
    try:
        return metadata.version("churn-stream")
    except metadata.PackageNotFoundError:
        return "unknown"


def create_app(
    settings: Settings,
    *,
    metrics_registry: CollectorRegistry | None = None,
    metrics_dir: Path | None = None,
    poll: bool = True,
) -> FastAPI:
    """Build the API for ``settings``; nothing is loaded until the server starts.

    ``poll=False`` turns off the background registry poll (``/admin/reload`` still works).
    ``metrics_dir``: the ``PROMETHEUS_MULTIPROC_DIR`` of a server with several worker
    processes; ``/metrics`` then serves the sum over all of them.
    Unusable key settings raise :class:`api.auth.KeyConfigError` (a short key, a bad keys
    file, a per-key rate limit without keys).
    """
    keys = KeyStore.from_settings(settings)
    metrics = ApiMetrics.create(
        metrics_registry, metrics_dir=metrics_dir, supervisor=os.getppid() if metrics_dir else None
    )
    registry = ModelRegistry.from_settings(settings)
    live = LiveModel(registry, events=metrics)
    state = ServiceState(
        settings=settings,
        live=live,
        challenger=LiveModel(registry, role="challenger") if settings.shadow_scoring else None,
        metrics=metrics,
        package_version=_package_version(),
        auth_required=keys is not None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        result = await asyncio.to_thread(state.reload)
        if result.status == "no_model":
            log.warning("api_started_without_model store=%s", settings.model_store)
        elif result.status == "refused" and result.serving is None:
            log.error("api_started_without_model error=%s", result.error)
        poller = asyncio.create_task(_poll(state), name="model-poll") if poll else None
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller

    app = FastAPIOffline(
        title="churn-stream API",
        version=state.package_version,
        description="Synchronous churn scoring with the model the stream scorer uses.",
        lifespan=lifespan,
        static_url=DOCS_ASSETS,
        # No validator badge: Swagger UI would send the schema to validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.service = state
    install_error_handlers(app)
    router = build_router(state)
    app.include_router(router)
    routes = [*router.routes, *app.routes]
    paths = sorted({path for route in routes if isinstance(path := getattr(route, "path", None), str)})
    state.endpoints = paths
    app.add_middleware(
        ServiceMiddleware,
        metrics=metrics,
        routes=paths,
        json_paths=JSON_ROUTES,
        max_body_bytes=settings.api_max_body_bytes,
        keys=keys,
        rate_limit=RateLimit(settings.api_rate_limit, settings.api_rate_limit_by)
        if settings.api_rate_limit
        else None,
        failure_throttle=FailureThrottle(settings.api_auth_failure_limit)
        if settings.api_auth_failure_limit and keys is not None
        else None,
        timeout_s=settings.api_request_timeout_s or None,
        mounts=[DOCS_ASSETS],
    )
    if settings.api_cors_origins:
        # Added last, so it is outermost: preflight requests are answered before the key check.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api_cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", API_KEY_HEADER],
        )
    _customise_openapi(app, api_key=keys is not None)
    return app


async def _poll(state: ServiceState) -> None:
    """Look for a newly promoted version every ``model_poll_interval_s`` seconds, forever."""
    interval = state.settings.model_poll_interval_s
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(state.reload)
        except Exception:  # keep polling whatever happened; the old model keeps serving
            log.exception("model_poll_failed")


def _customise_openapi(app: FastAPI, *, api_key: bool) -> None:
    """Publish what the generated schema cannot know.

    * the scoring routes read their bodies themselves (:mod:`api.bodies`): their
      request body is the published input schema (``schemas.json_schema``), as a component;
    * with an API key, the ``X-API-Key`` security scheme on every guarded route.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schema.setdefault("components", {}).setdefault("schemas", {}).update(openapi_components())
        if api_key:
            schema.setdefault("components", {})["securitySchemes"] = {
                "ApiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": API_KEY_HEADER,
                    "description": "A key with the predict scope for /predict, /predict/batch and /model, "
                    "with the admin scope for /admin/*.",
                }
            }
            schema["security"] = [{"ApiKey": []}]
            for path, operations in schema.get("paths", {}).items():
                if path in PUBLIC_PATHS:
                    for operation in operations.values():
                        operation["security"] = []
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
