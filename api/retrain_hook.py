"""``churn retrain --listen``: the Alertmanager webhook that starts a gated retrain (docs/mlops.md).

``POST /alerts`` takes Alertmanager's webhook body (``version`` "4": ``status``, ``alerts[]``
with ``status`` and ``labels.alertname``). Each *firing* alert whose name is in the configured
set asks for a retrain through :class:`training.trigger.RetrainTrigger` (one run at a time,
coalescing, cooldown); the others are acknowledged and ignored. ``GET /health`` and
``GET /metrics`` are open, like the API's probes.

With keys configured (``CHURN_API_KEY``, ``CHURN_API_KEYS_FILE``: :mod:`api.auth`), ``/alerts``
needs a key with the ``admin`` scope, as ``Authorization: Bearer <key>`` (what Alertmanager's
``http_config.authorization`` sends) or ``X-API-Key``: 401 without a key or with a wrong one,
403 for a key without ``admin``. Without keys only a loopback address may be served.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, Literal

import orjson
import uvicorn
from fastapi import FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.responses import Response

from api.auth import KeyStore, presented_key
from api.errors import error_response, field_errors, install_error_handlers, invalid_json_response
from api.server import UnauthenticatedBindError, is_loopback, server_config
from config.settings import Settings
from monitoring.metrics import RetrainMetrics
from training.trigger import RetrainTrigger, Trigger

log = logging.getLogger(__name__)

#: The alerts that retrain unless told otherwise (monitoring/alerts.yml).
DEFAULT_ALERTNAMES = ("ChurnPredictionDrift", "ChurnLiveRocAucBelowTraining")
#: Alertmanager's bodies are a few kB per alert; this bounds what a key holder can make us buffer.
MAX_BODY_BYTES = 1024 * 1024
_API_KEY = b"x-api-key"
_AUTHORIZATION = b"authorization"


class HookAlert(BaseModel):
    """One alert of the body; fields this service does not use are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    starts_at: datetime | None = Field(default=None, alias="startsAt")
    fingerprint: str | None = None

    @field_validator("labels")
    @classmethod
    def _has_alertname(cls, labels: dict[str, str]) -> dict[str, str]:
        if not labels.get("alertname"):
            raise ValueError("an alert needs an alertname label")
        return labels


class AlertmanagerPayload(BaseModel):
    """Alertmanager's webhook body, version 4."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    group_key: str = Field(default="", alias="groupKey")
    alerts: list[HookAlert] = Field(min_length=1)


def parse_payload(body: bytes) -> AlertmanagerPayload | Response:
    """The payload, or the error answer: 400 for bytes that are not JSON, 422 naming each bad field."""
    try:
        return AlertmanagerPayload.model_validate_json(body)
    except ValidationError as exc:
        raw = exc.errors()
        unreadable = invalid_json_response(raw)
        if unreadable is not None:
            return unreadable
        errors = field_errors(raw)
        fields = ", ".join(e["field"] for e in errors)
        return error_response(
            422, "validation_error", f"not an Alertmanager webhook payload (version 4): {fields}", errors
        )


def _alert_evidence(alert: HookAlert, receiver: str) -> dict[str, Any]:
    return {
        "alertname": alert.labels["alertname"],
        "status": alert.status,
        "starts_at": alert.starts_at.isoformat() if alert.starts_at else None,
        "fingerprint": alert.fingerprint,
        "labels": dict(alert.labels),
        "receiver": receiver,
    }


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def create_hook_app(
    trigger: RetrainTrigger,
    *,
    keys: KeyStore | None,
    alertnames: Collection[str] = DEFAULT_ALERTNAMES,
    metrics: RetrainMetrics,
) -> FastAPI:
    """The webhook's ASGI app around ``trigger`` (started and stopped by the caller)."""
    names = frozenset(alertnames)
    app = FastAPI(title="churn retrain webhook", docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app)

    def refused(request: Request) -> Response | None:
        if keys is None:
            return None
        headers = dict(request.scope["headers"])
        key = presented_key(headers.get(_API_KEY), headers.get(_AUTHORIZATION))
        client = request.client.host if request.client else "unknown"
        if key is None:
            metrics.auth_failures.labels(reason="missing_key").inc()
            log.warning("retrain_hook_auth_failed reason=missing_key client=%s", client)
            return error_response(
                401,
                "missing_api_key",
                "send an API key with the admin scope: Authorization: Bearer <key> (or X-API-Key)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        found = keys.match(key)
        if found is None:
            metrics.auth_failures.labels(reason="invalid_key").inc()
            log.warning("retrain_hook_auth_failed reason=invalid_key client=%s", client)
            return error_response(
                401, "invalid_api_key", "the API key is wrong", headers={"WWW-Authenticate": "Bearer"}
            )
        if "admin" not in found.scopes:
            metrics.auth_failures.labels(reason="insufficient_scope").inc()
            log.warning("retrain_hook_scope_refused key=%s needs=admin", found.name)
            return error_response(
                403, "insufficient_scope", "starting a retrain needs a key with the admin scope"
            )
        request.scope.setdefault("state", {})["api_key"] = found.name
        return None

    @app.post("/alerts", status_code=202)
    async def alerts(request: Request) -> Response:
        rejection = refused(request)
        if rejection is not None:
            return rejection
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return error_response(
                    413, "body_too_large", f"the body is larger than {MAX_BODY_BYTES} bytes"
                )
        payload = parse_payload(bytes(body))
        if isinstance(payload, Response):
            return payload
        firing = [a for a in payload.alerts if a.status == "firing" and a.labels["alertname"] in names]
        for alert in payload.alerts:
            if all(alert is not f for f in firing):
                name = alert.labels["alertname"]
                metrics.triggers.labels(alertname=name if name in names else "other", outcome="ignored").inc()
        if not firing:
            return _json(
                200,
                {
                    "status": "ignored",
                    "reason": f"no firing alert among {', '.join(sorted(names))}",
                    "retrain": trigger.status(),
                },
            )
        asked = Trigger("alert", tuple(_alert_evidence(a, payload.receiver) for a in firing))
        outcome = trigger.submit(asked)
        for alert in firing:
            metrics.triggers.labels(alertname=alert.labels["alertname"], outcome=outcome).inc()
        return _json(
            202,
            {
                "status": outcome,
                "alerts": sorted({a.labels["alertname"] for a in firing}),
                "retrain": trigger.status(),
            },
        )

    @app.get("/health")
    async def health() -> Response:
        return _json(200, {"status": "ok", "retrain": trigger.status()})

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8081`` for IPv6) or a bare ``PORT`` on 127.0.0.1."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text.strip()
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: write HOST:PORT, e.g. 127.0.0.1:8081 or 0.0.0.0:8081")
    return host, int(port)


def check_hook_binding(host: str, keys: KeyStore | None) -> None:
    """Refuse a non-loopback address without keys: anyone reaching it could start retraining."""
    if keys is None and not is_loopback(host):
        raise UnauthenticatedBindError(
            f"refusing to listen on {host} without an API key: anyone who reaches it could start "
            "retraining. Set CHURN_API_KEY or CHURN_API_KEYS_FILE (a key with the admin scope), "
            "or listen on 127.0.0.1"
        )


def serve(
    settings: Settings,
    run: Callable[[Sequence[Trigger]], str],
    *,
    host: str,
    port: int,
    cooldown_s: float,
    alertnames: Collection[str] = DEFAULT_ALERTNAMES,
    every_s: float | None = None,
) -> None:
    """Serve the webhook until SIGTERM/SIGINT, running ``run`` for each retrain it starts.

    With ``every_s`` a schedule asks for a run at start and then every ``every_s`` seconds, under
    the same one-at-a-time rule. On the way out a running retrain is waited for; a waiting one is
    dropped. Unusable keys raise :class:`api.auth.KeyConfigError` before anything listens.
    """
    keys = KeyStore.from_settings(settings)
    check_hook_binding(host, keys)
    metrics = RetrainMetrics.create()
    runs = metrics.runs

    def on_run(decision: str | None) -> None:
        if decision is None:
            metrics.running.set(1)
            return
        metrics.running.set(0)
        metrics.last_run_end.set_to_current_time()
        runs.labels(decision=decision).inc()

    trigger = RetrainTrigger(run, cooldown_s=cooldown_s, on_run=on_run)
    app = create_hook_app(trigger, keys=keys, alertnames=alertnames, metrics=metrics)
    stop = threading.Event()

    def schedule() -> None:
        assert every_s is not None
        while not stop.is_set():
            outcome = trigger.submit(Trigger("schedule"))
            metrics.triggers.labels(alertname="schedule", outcome=outcome).inc()
            stop.wait(every_s)

    trigger.start()
    if every_s is not None:
        threading.Thread(target=schedule, name="retrain-schedule", daemon=True).start()
    log.info(
        "retrain_hook_listening host=%s port=%d alerts=%s cooldown_s=%g keys=%s",
        host,
        port,
        ",".join(sorted(alertnames)),
        cooldown_s,
        ",".join(keys.names) if keys else "none",
    )
    # uvicorn shuts down on SIGTERM/SIGINT and then raises the signal again under the handler
    # found at start: with these, that second delivery ends nothing and the clean-up below runs.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    try:
        uvicorn.Server(server_config(settings, app, host=host, port=port)).run()
    finally:
        stop.set()
        trigger.stop()
