"""The API middleware on its own, as raw ASGI: the exact answers, log lines and edge paths.

The route tests (``test_api_auth.py``, ``test_api_limits.py``) go through FastAPI's TestClient,
which hands a body over as one message and never stalls half-way through a response; these
drive :class:`api.middleware.ServiceMiddleware` with hand-made ASGI messages instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from starlette.exceptions import HTTPException

from api.auth import KeyStore, make_key
from api.middleware import ServiceMiddleware
from api.rate_limit import FailureThrottle
from monitoring.metrics import ApiMetrics

SECRET = "a-predict-key-of-32-characters!!"
ROUTES = ("/predict", "/slow", "/admin/reload")
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A route that reads the whole body, then answers 200 with its length."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def _middleware(app: App = _ok, **options: Any) -> ServiceMiddleware:
    settings: dict[str, Any] = {
        "metrics": ApiMetrics.create(),
        "routes": ROUTES,
        "json_paths": ("/predict",),
        "max_body_bytes": 100,
        "keys": KeyStore([make_key("reader", SECRET, ["predict"], "test")]),
    } | options
    return ServiceMiddleware(app, **settings)


def _scope(
    path: str = "/predict", key: str | None = SECRET, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    given = {"content-type": "application/json"} | (headers or {})
    if key is not None:
        given["x-api-key"] = key
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in given.items()],
        "client": ("203.0.113.7", 50000),
        "state": {},
    }


def _call(
    middleware: ServiceMiddleware,
    scope: dict[str, Any],
    chunks: list[bytes],
    sent: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Run one request with its body in ``chunks``; the messages the middleware sent (into ``sent``,
    when given, so that they are seen even when the request raises)."""
    sent = [] if sent is None else sent
    pending = list(chunks) or [b""]

    async def receive() -> dict[str, Any]:
        body = pending.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    return sent


def _logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "api.middleware"]


def _answer(sent: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    return sent[0]["status"], orjson.loads(sent[1]["body"])


@pytest.mark.parametrize(
    ("path", "key", "status", "error", "message", "logged"),
    [
        (
            "/predict",
            None,
            401,
            "missing_api_key",
            "this route needs the X-API-Key header",
            "api_auth_failed reason=missing_key client=203.0.113.7 path=/predict",
        ),
        (
            "/predict",
            "w" * 32,
            403,
            "invalid_api_key",
            "the X-API-Key header is wrong",
            "api_auth_failed reason=invalid_key client=203.0.113.7 path=/predict",
        ),
        (
            "/admin/reload",
            SECRET,
            403,
            "insufficient_scope",
            "this route needs a key with the admin scope",
            "api_key_scope_refused key=reader path=/admin/reload needs=admin",
        ),
    ],
    ids=["missing", "wrong", "scope"],
)
def test_each_refused_key_is_answered_and_logged_in_its_own_words(
    path: str,
    key: str | None,
    status: int,
    error: str,
    message: str,
    logged: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent = _call(_middleware(), _scope(path, key), [b"{}"])
    assert _answer(sent) == (status, {"error": error, "message": message, "errors": []})
    assert _logged(caplog) == [logged]
    if status == 401:
        assert (b"www-authenticate", b"X-API-Key") in sent[0]["headers"]


def test_an_address_over_the_failure_throttle_is_told_when_to_retry() -> None:
    middleware = _middleware(failure_throttle=FailureThrottle("1/minute"))
    assert _answer(_call(middleware, _scope(key=None), [b"{}"]))[0] == 401
    sent = _call(middleware, _scope(), [b"{}"])  # even the right key waits
    status, body = _answer(sent)
    assert status == 429 and body["error"] == "too_many_auth_failures"
    wait = dict(sent[0]["headers"])[b"retry-after"].decode()
    assert body["message"] == (
        f"too many requests with a missing or wrong X-API-Key from this address; retry in {wait} s"
    )
    assert 1 <= int(wait) <= 60


def test_a_chunked_body_is_counted_over_all_its_chunks() -> None:
    """No Content-Length: every chunk is under the limit, their sum is not."""
    middleware = _middleware()
    assert _call(middleware, _scope(), [b"x" * 60, b"x" * 40])[1]["body"] == b"100"
    with pytest.raises(HTTPException) as refused:
        _call(middleware, _scope(), [b"x" * 60, b"x" * 41])
    assert (refused.value.status_code, refused.value.detail) == (413, "the body is larger than 100 bytes")


def test_a_declared_body_over_the_limit_is_413_in_words() -> None:
    sent = _call(_middleware(), _scope(headers={"content-length": "101"}), [b"x" * 101])
    assert _answer(sent) == (
        413,
        {"error": "body_too_large", "message": "the body is larger than 100 bytes", "errors": []},
    )


async def _stalls_after_headers(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await asyncio.sleep(5)


async def _stalls(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await asyncio.sleep(5)


def test_a_timeout_before_the_answer_is_504_and_logged_with_the_key(caplog: pytest.LogCaptureFixture) -> None:
    sent = _call(_middleware(_stalls, timeout_s=0.05), _scope("/slow"), [b""])
    assert _answer(sent) == (
        504,
        {"error": "request_timeout", "message": "the request took longer than 0.05 s", "errors": []},
    )
    logged = _logged(caplog)
    assert logged == ["request_timeout path=/slow after_s=0.05 key=reader"]


def test_a_timeout_after_the_headers_went_out_closes_the_response(caplog: pytest.LogCaptureFixture) -> None:
    """Half a response is out: no second start message; the server drops the connection."""
    metrics = ApiMetrics.create()
    middleware = _middleware(_stalls_after_headers, timeout_s=0.05, metrics=metrics)
    sent: list[dict[str, Any]] = []
    with pytest.raises(TimeoutError):
        _call(middleware, _scope("/slow"), [b""], sent)
    assert [m["type"] for m in sent] == ["http.response.start"]
    assert "request_timeout path=/slow" in caplog.text
    counted = metrics.registry.get_sample_value(
        "churn_api_requests_total", {"route": "/slow", "method": "POST", "status": "200"}
    )
    assert counted == 1.0


def test_without_keys_every_route_is_open_and_the_log_names_no_key(caplog: pytest.LogCaptureFixture) -> None:
    sent = _call(_middleware(_stalls, keys=None, timeout_s=0.05), _scope("/slow", key=None), [b""])
    assert sent[0]["status"] == 504
    assert _logged(caplog) == ["request_timeout path=/slow after_s=0.05 key=-"]


def test_a_refused_request_is_counted_under_its_route_and_status() -> None:
    metrics = ApiMetrics.create()
    _call(_middleware(metrics=metrics), _scope(key=None), [b"{}"])
    _call(_middleware(metrics=metrics), _scope("/nowhere"), [b"{}"])

    def count(route: str, status: str) -> float | None:
        labels = {"route": route, "method": "POST", "status": status}
        return metrics.registry.get_sample_value("churn_api_requests_total", labels)

    assert (count("/predict", "401"), count("unmatched", "200")) == (1.0, 1.0)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_every_method_with_a_body_has_its_chunks_counted(method: str) -> None:
    scope = _scope() | {"method": method, "path": "/slow"}
    with pytest.raises(HTTPException, match="larger than 100 bytes"):
        _call(_middleware(), scope, [b"x" * 60, b"x" * 41])


def test_a_timeout_on_a_server_that_gives_no_state_names_no_key(caplog: pytest.LogCaptureFixture) -> None:
    """``state`` is an optional ASGI extension: without it the log line still has its key field."""
    scope = _scope("/slow", key=None)
    del scope["state"]
    sent = _call(_middleware(_stalls, keys=None, timeout_s=0.05), scope, [b""])
    assert sent[0]["status"] == 504
    assert "request_timeout path=/slow after_s=0.05 key=-" in caplog.messages


@pytest.mark.parametrize(
    ("headers", "status", "body"),
    [
        (
            {"content-type": "text/plain"},
            415,
            {"error": "unsupported_media_type", "message": "send the body as application/json", "errors": []},
        ),
        ({"content-type": "application/json; charset=utf-8; profile=x"}, 200, None),
        (
            {"content-length": "ten"},
            400,
            {"error": "bad_request", "message": "Content-Length is not a number", "errors": []},
        ),
    ],
    ids=["text", "json-with-parameters", "length-not-a-number"],
)
def test_the_body_checks_answer_in_their_own_words(
    headers: dict[str, str], status: int, body: dict[str, Any] | None
) -> None:
    sent = _call(_middleware(), _scope(headers=headers), [b"{}"])
    assert sent[0]["status"] == status
    if body is not None:
        assert orjson.loads(sent[1]["body"]) == body


def test_a_limit_by_key_still_counts_keyless_requests_per_address() -> None:
    """The service description needs no key: its callers are told apart by address."""
    from api.rate_limit import RateLimit

    middleware = _middleware(rate_limit=RateLimit("1/minute", by="key"))
    for client in ("203.0.113.7", "203.0.113.8"):
        scope = _scope("/", key=None) | {"method": "GET", "client": (client, 50000)}
        assert _call(middleware, scope, [b""])[0]["status"] == 200


def test_the_latency_of_a_request_is_its_duration() -> None:
    metrics = ApiMetrics.create()
    _call(_middleware(metrics=metrics), _scope(), [b"{}"])
    labels = {"route": "/predict"}
    assert metrics.registry.get_sample_value("churn_api_request_latency_seconds_count", labels) == 1.0
    assert 0.0 < metrics.registry.get_sample_value("churn_api_request_latency_seconds_sum", labels) < 1.0  # type: ignore[operator]
