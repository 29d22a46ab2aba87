"""Serve a metrics registry at ``/metrics`` with prometheus-client's threaded HTTP server."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

log = logging.getLogger(__name__)


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> Any:
    """Start the server in a daemon thread; returns the server (``.shutdown()`` stops it)."""
    server, _thread = start_http_server(port, addr=host, registry=registry)
    log.info("metrics at http://%s:%d/metrics", host, port)
    return server
