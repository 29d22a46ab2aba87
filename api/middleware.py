"""One plain ASGI middleware for what every request needs before routing.

In order: the API key check (when a key is configured), the per-client rate
limit (when configured; probes and /metrics are exempt), the body-size limit,
the content-type check of JSON endpoints, the request timeout around the route,
then the request metrics (count by route, method and status; latency by route).
It is written against raw ASGI, not ``BaseHTTPMiddleware``, because it runs on every request of a path whose
whole budget is about a millisecond.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from api.rate_limit import RateLimit
from monitoring.metrics import ApiMetrics

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
_KEY_HEADER = API_KEY_HEADER.lower().encode()
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
#: Paths reachable without the API key: probes, Prometheus and the service description.
PUBLIC_PATHS = frozenset({"/", "/metrics", "/health", "/health/live", "/health/ready"})
#: Paths the rate limit never applies to: probes and Prometheus must always get through.
UNLIMITED_PATHS = frozenset({"/metrics", "/health", "/health/live", "/health/ready"})


class ServiceMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: ApiMetrics,
        routes: Iterable[str],
        json_paths: Iterable[str],
        max_body_bytes: int,
        api_key: str | None,
        rate_limit: RateLimit | None = None,
        timeout_s: float | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = frozenset(routes)
        self.json_paths = frozenset(json_paths)
        self.max_body_bytes = max_body_bytes
        self.api_key = api_key.encode() if api_key else None
        self.rate_limit = rate_limit
        self.timeout_s = timeout_s
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._latency: dict[str, Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        route = path if path in self.routes else "unmatched"
        status = 500
        started_response = False

        async def send_and_record(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
            await send(message)

        try:
            rejection, receive = self._admit(scope, path, receive)
            if rejection is not None:
                await rejection(scope, receive, send_and_record)
            elif self.timeout_s is None:
                await self.app(scope, receive, send_and_record)
            else:
                deadline = asyncio.timeout(self.timeout_s)
                try:
                    async with deadline:
                        await self.app(scope, receive, send_and_record)
                except TimeoutError:
                    if not deadline.expired():
                        raise  # a TimeoutError of the route itself, not ours
                    log.warning("request_timeout path=%s after_s=%s", path, self.timeout_s)
                    if started_response:
                        raise  # half a response is out; the server closes the connection
                    timed_out = error_response(
                        504, "request_timeout", f"the request took longer than {self.timeout_s:g} s"
                    )
                    await timed_out(scope, receive, send_and_record)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self._record(route, method, status, time.perf_counter() - started)

    def _admit(self, scope: Scope, path: str, receive: Receive) -> tuple[Any, Receive]:
        """``(None, receive)`` to go on, or ``(error response, receive)`` to answer at once."""
        key: bytes | None = None
        length: bytes | None = None
        content_type: bytes | None = None
        for name, value in scope["headers"]:
            if name == _KEY_HEADER:
                key = value
            elif name == b"content-length":
                length = value
            elif name == b"content-type":
                content_type = value
        if self.api_key is not None and path not in PUBLIC_PATHS:
            if key is None:
                return error_response(
                    401,
                    "missing_api_key",
                    f"this route needs the {API_KEY_HEADER} header",
                    headers={"WWW-Authenticate": API_KEY_HEADER},
                ), receive
            if not hmac.compare_digest(key, self.api_key):
                return error_response(
                    403, "invalid_api_key", f"the {API_KEY_HEADER} header is wrong"
                ), receive
        if self.rate_limit is not None and path not in UNLIMITED_PATHS:
            limit = self.rate_limit
            wait = limit.retry_after(limit.identity(key, scope.get("client")))
            if wait is not None:
                return error_response(
                    429,
                    "rate_limited",
                    f"more than {limit.spec} requests; retry in {wait} s",
                    headers={"Retry-After": str(wait)},
                ), receive
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                return error_response(400, "bad_request", "Content-Length is not a number"), receive
            if size > self.max_body_bytes:
                return self._too_large(), receive
        elif scope["method"] in ("POST", "PUT", "PATCH"):
            receive = self._counting(receive)
        if path in self.json_paths and scope["method"] == "POST" and length != b"0":
            media = (content_type or b"").split(b";", 1)[0].strip().lower()
            if media != b"application/json" and not media.endswith(b"+json"):
                return error_response(
                    415, "unsupported_media_type", "send the body as application/json"
                ), receive
        return None, receive

    def _too_large(self) -> Any:
        return error_response(413, "body_too_large", f"the body is larger than {self.max_body_bytes} bytes")

    def _counting(self, receive: Receive) -> Receive:
        """A chunked body has no Content-Length: count the bytes as they arrive."""
        seen = 0
        limit = self.max_body_bytes

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, f"the body is larger than {limit} bytes")
            return message

        return counted

    def _record(self, route: str, method: str, status: int, seconds: float) -> None:
        counter = self._counters.get((route, method, status))
        if counter is None:
            counter = self.metrics.requests.labels(route=route, method=method, status=str(status))
            self._counters[(route, method, status)] = counter
        counter.inc()
        latency = self._latency.get(route)
        if latency is None:
            latency = self._latency[route] = self.metrics.request_latency.labels(route=route)
        latency.observe(seconds)
