"""The container health probe: exit 0 only for a 2xx answer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from devstack.ports import free_port
from monitoring import healthcheck


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/health" else 503
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_healthy_endpoint_exits_zero(server: str) -> None:
    assert healthcheck.main([f"{server}/health"]) == 0


def test_error_status_exits_one(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert healthcheck.main([f"{server}/broken"]) == 1
    assert "answered 503" in capsys.readouterr().err


def test_nothing_listening_exits_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert healthcheck.main([f"http://127.0.0.1:{free_port()}/health"]) == 1
    assert "unreachable" in capsys.readouterr().err


def test_url_from_the_environment(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_HEALTHCHECK_URL", f"{server}/health")
    assert healthcheck.main([]) == 0


def test_non_http_url_is_refused() -> None:
    assert healthcheck.probe("file:///etc/passwd") is not None
