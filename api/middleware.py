"""One plain ASGI middleware for what every request needs before routing.

In order: the throttle of addresses that sent too many wrong or missing API keys,
the API key check and its scope (when keys are configured, :mod:`api.auth`), the
per-client rate limit (when configured; probes and /metrics are exempt), the body-size limit,
the content-type check of JSON endpoints, the request timeout around the route,
then the request metrics (count by route, method and status; latency by route).
It is written against raw ASGI, not ``BaseHTTPMiddleware``, because it runs on every request of a path whose
whole budget is about a millisecond.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import KeyStore, required_scope
from api.errors import error_response
from api.rate_limit import FailureThrottle, RateLimit, address
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
        keys: KeyStore | None,
        rate_limit: RateLimit | None = None,
        failure_throttle: FailureThrottle | None = None,
        timeout_s: float | None = None,
        mounts: Iterable[str] = (),
    ) -> None:
        self.app = app
        # Static file folders (the docs' assets): counted under their folder, not as unmatched.
        self.mounts = tuple(f"{mount.rstrip('/')}/" for mount in mounts)
        self.metrics = metrics
        self.routes = frozenset(routes)
        self.json_paths = frozenset(json_paths)
        self.max_body_bytes = max_body_bytes
        self.keys = keys
        self.rate_limit = rate_limit
        self.failure_throttle = failure_throttle
        self.timeout_s = timeout_s
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._latency: dict[str, Histogram] = {}
        self._auth_failures = {
            reason: metrics.auth_failures.labels(reason=reason)
            for reason in ("missing_key", "invalid_key", "insufficient_scope", "throttled")
        }

    def _mounted(self, path: str) -> str:
        for mount in self.mounts:
            if path.startswith(mount):
                return mount.rstrip("/")
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        route = path if path in self.routes else self._mounted(path)
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
                    log.warning(
                        "request_timeout path=%s after_s=%s key=%s",
                        path,
                        self.timeout_s,
                        scope.get("state", {}).get("api_key", "-"),
                    )
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
        key_name: str | None = None
        if self.keys is not None and path not in PUBLIC_PATHS:
            refused, key_name = self._authenticate(scope, path, key)
            if refused is not None:
                return refused, receive
        if self.rate_limit is not None and path not in UNLIMITED_PATHS:
            limit = self.rate_limit
            wait = limit.retry_after(limit.identity(key_name, scope.get("client")))
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

    def _authenticate(self, scope: Scope, path: str, key: bytes | None) -> tuple[Any, str | None]:
        """``(None, key name)`` for a valid key with the route's scope, else ``(error response, None)``.

        An address over the failure throttle is refused before its key is even compared.
        """
        assert self.keys is not None
        client = address(scope.get("client"))
        throttle = self.failure_throttle
        if throttle is not None:
            wait = throttle.retry_after(client)
            if wait is not None:
                self._auth_failures["throttled"].inc()
                return error_response(
                    429,
                    "too_many_auth_failures",
                    f"too many requests with a missing or wrong {API_KEY_HEADER} from this address; "
                    f"retry in {wait} s",
                    headers={"Retry-After": str(wait)},
                ), None
        if key is None:
            self._failed(throttle, client, "missing_key", path)
            return error_response(
                401,
                "missing_api_key",
                f"this route needs the {API_KEY_HEADER} header",
                headers={"WWW-Authenticate": API_KEY_HEADER},
            ), None
        found = self.keys.match(key)
        if found is None:
            self._failed(throttle, client, "invalid_key", path)
            return error_response(403, "invalid_api_key", f"the {API_KEY_HEADER} header is wrong"), None
        needed = required_scope(path)
        if needed is not None and needed not in found.scopes:
            self._auth_failures["insufficient_scope"].inc()
            log.warning("api_key_scope_refused key=%s path=%s needs=%s", found.name, path, needed)
            return error_response(
                403, "insufficient_scope", f"this route needs a key with the {needed} scope"
            ), None
        scope.setdefault("state", {})["api_key"] = found.name
        return None, found.name

    def _failed(self, throttle: FailureThrottle | None, client: str, reason: str, path: str) -> None:
        self._auth_failures[reason].inc()
        if throttle is not None:
            throttle.failed(client)
        log.warning("api_auth_failed reason=%s client=%s path=%s", reason, client, path)

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
