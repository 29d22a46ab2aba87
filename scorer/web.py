"""The web port of the scorer and of `churn quality`: ``/metrics``, ``/health/live``, ``/health/ready``.

A threaded ``http.server`` from the standard library: three read-only routes do
not need a web framework, and the server runs in a daemon thread beside either
engine (the Faust worker's own web server stays off). ``/metrics`` speaks the
Prometheus text format or OpenMetrics, whichever the scraper asks for
(prometheus-client's ``choose_encoder``), gzip-compressed when accepted.

``/health/ready`` answers 200 with ``{"status": "ready"}`` or 503 with the failing
conditions and their reasons (see :mod:`scorer.readiness`); ``/health/live``
answers 200 while the consuming loop beats, 503 once it is overdue.
"""

from __future__ import annotations

import gzip
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from scorer.readiness import Readiness

log = logging.getLogger(__name__)


class ScorerWebServer:
    """Serves the registry and the readiness of one scorer (or ``name``d process) until :meth:`shutdown`."""

    def __init__(
        self, registry: CollectorRegistry, readiness: Readiness, host: str, port: int, name: str = "scorer"
    ) -> None:
        handler = _handler_class(registry, readiness, f"churn-{name}")
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.host = host
        self.port = self._server.server_address[1]
        self.name = name
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"{name}-web", daemon=True)

    def start(self) -> ScorerWebServer:
        self._thread.start()
        log.info(
            "%s web at http://%s:%d (/metrics, /health/live, /health/ready)", self.name, self.host, self.port
        )
        return self

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_class(
    registry: CollectorRegistry, readiness: Readiness, server: str
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = server

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._metrics()
            elif path == "/health/ready":
                verdict = readiness.verdict()
                if verdict.ready:
                    self._json(200, {"status": "ready"})
                else:
                    self._json(503, {"status": "not_ready", "failing": dict(verdict.failing)})
            elif path == "/health/live":
                alive, since = readiness.alive()
                body = {"status": "alive" if alive else "stuck", "seconds_since_beat": since}
                self._json(200 if alive else 503, body)
            else:
                self._json(
                    404, {"error": "not_found", "paths": ["/metrics", "/health/live", "/health/ready"]}
                )

        def _metrics(self) -> None:
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            body = encoder(registry)
            encoding = None
            if "gzip" in self.headers.get("Accept-Encoding", ""):
                body, encoding = gzip.compress(body), "gzip"
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            if encoding:
                self.send_header("Content-Encoding", encoding)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, body: object) -> None:
            data = orjson.dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return  # probes and scrapes every few seconds: no access log

    return Handler
