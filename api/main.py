"""The entry point uvicorn imports: ``uvicorn --factory api.main:create_app_from_env``.

With ``--workers N`` uvicorn starts N processes that each import this module
and call the factory, so the configuration reaches them through ``CHURN_*``
environment variables (``churn api`` sets those from its flags). ``churn api``
also sets ``PROMETHEUS_MULTIPROC_DIR`` for them, so that ``/metrics`` adds up
every worker (see :mod:`monitoring.multiprocess`).
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

from api.app import create_app
from config.logs import setup_logging
from config.settings import Settings

#: The import string ``churn api`` hands to uvicorn.
FACTORY = "api.main:create_app_from_env"
#: prometheus_client's switch to per-process metric files (read by the client at import).
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def create_app_from_env() -> FastAPI:
    settings = Settings()
    setup_logging(settings.log_level)
    metrics_dir = os.environ.get(MULTIPROC_DIR_ENV)
    return create_app(settings, metrics_dir=Path(metrics_dir) if metrics_dir else None)
