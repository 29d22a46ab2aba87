"""Every published contract document by file name, as ``churn contract export`` writes it under ``docs/``.

``schemas/<name>.json`` are the JSON Schemas of :mod:`schemas.json_schema`;
``asyncapi.yaml`` is :mod:`schemas.asyncapi`'s document, which refers to them.
The API serves the JSON Schemas at ``/schemas/{name}.json``; a unit test fails
when the committed files differ from what the code generates.
"""

from __future__ import annotations

from typing import Any

from schemas.asyncapi import asyncapi_document
from schemas.json_schema import SCHEMA_NAMES, schema


def documents() -> dict[str, dict[str, Any]]:
    """Each document by its path under ``docs/``."""
    docs: dict[str, dict[str, Any]] = {f"schemas/{name}.json": schema(name) for name in SCHEMA_NAMES}
    docs["asyncapi.yaml"] = asyncapi_document()
    return docs
