"""The entry point uvicorn imports: ``uvicorn --factory api.main:create_app_from_env``.

With ``--workers N`` uvicorn starts N processes that each import this module
and call the factory, so the configuration reaches them through ``CHURN_*``
environment variables (``churn api`` sets those from its flags).
"""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from config.logs import setup_logging
from config.settings import Settings

#: The import string ``churn api`` hands to uvicorn.
FACTORY = "api.main:create_app_from_env"


def create_app_from_env() -> FastAPI:
    settings = Settings()
    setup_logging(settings.log_level)
    return create_app(settings)
