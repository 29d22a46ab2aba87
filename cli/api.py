"""``churn api``: the REST side service under uvicorn, with the limits of ``api/server.py``."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from cli.console import console, fail, overridden


def command(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Bind address (env CHURN_API_HOST, 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Port (env CHURN_API_PORT, 8000)."),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Processes (env CHURN_API_WORKERS, 1)."
    ),
    store: Path | None = typer.Option(None, "--store", help="Model store (env CHURN_MODEL_STORE)."),
    access_log: bool | None = typer.Option(
        None, "--access-log/--no-access-log", help="One INFO line per request (env CHURN_API_ACCESS_LOG)."
    ),
    allow_unauthenticated: bool | None = typer.Option(
        None,
        "--allow-unauthenticated",
        help="Listen on a non-loopback address without an API key (env CHURN_API_ALLOW_UNAUTHENTICATED).",
    ),
) -> None:
    """Serve /predict, /predict/batch, /health, /model and /metrics; reload new models on the fly."""
    # The server, FastAPI and sklearn load when it starts, not for `churn --help`.
    from api.auth import KeyConfigError
    from api.server import serve

    settings = overridden(
        ctx.obj,
        api_host=host,
        api_port=port,
        api_workers=workers,
        model_store=store,
        api_access_log=access_log,
        api_allow_unauthenticated=allow_unauthenticated,
    )
    console.print(
        f"churn API on http://{settings.api_host}:{settings.api_port} "
        f"({settings.api_workers} worker(s), store {settings.model_store}); docs at /docs"
    )
    if settings.api_workers > 1:
        # Worker processes build their own app from the environment: hand the flags over there.
        os.environ["CHURN_MODEL_STORE"] = str(settings.model_store)
        os.environ["CHURN_LOG_LEVEL"] = settings.log_level
        os.environ["CHURN_API_ACCESS_LOG"] = str(settings.api_access_log).lower()
    try:
        serve(settings)
    except KeyConfigError as exc:
        fail(str(exc))
