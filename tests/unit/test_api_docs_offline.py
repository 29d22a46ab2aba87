"""/docs and /redoc work without internet access: every file they load comes from the service."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from api.app import DOCS_ASSETS, create_app
from config.settings import Settings

KEY = "k" * 40
#: Any absolute URL, wherever it appears in the page (attribute, script, style, comment).
ABSOLUTE_URL = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+", re.IGNORECASE)
#: What a page makes the browser load: src=, href= and ReDoc's spec-url=.
LOADED = re.compile(r"""\b(?:src|href|spec-url)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
#: Scripts fetch the schema with a quoted ``url: '...'``.
SCRIPT_URL = re.compile(r"""\burl\s*:\s*["']([^"']+)["']""")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(model_store=tmp_path), poll=False)) as test_client:
        yield test_client


def referenced(html: str) -> list[str]:
    return LOADED.findall(html) + SCRIPT_URL.findall(html)


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png"}),
    ],
)
def test_pages_load_only_files_of_the_service(client: TestClient, page: str, assets: set[str]) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert not ABSOLUTE_URL.findall(html), f"{page} references another host"
    urls = referenced(html)
    assert {url.rsplit("/", 1)[-1] for url in urls if url.startswith(DOCS_ASSETS)} == assets
    assert "/openapi.json" in urls
    for url in urls:
        assert url.startswith("/"), url
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert answer.content, url
    script = next(url for url in urls if url.endswith(".js"))
    assert "javascript" in client.get(script).headers["content-type"]
    assert len(client.get(script).content) > 500_000  # the real bundle, not a stub


def test_swagger_ui_sends_the_schema_to_no_validator(client: TestClient) -> None:
    assert '"validatorUrl": null' in client.get("/docs").text


def test_asset_requests_are_counted_under_their_folder(client: TestClient) -> None:
    assert client.get(f"{DOCS_ASSETS}/swagger-ui.css").status_code == 200
    assert client.get(f"{DOCS_ASSETS}/missing.js").status_code == 404
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    routes = {
        (s.labels["route"], s.labels["status"])
        for s in families["churn_api_requests"].samples
        if s.name == "churn_api_requests_total"
    }
    assert {(DOCS_ASSETS, "200"), (DOCS_ASSETS, "404")} <= routes
    assert ("unmatched", "200") not in routes


def test_with_a_key_the_docs_and_their_files_need_it(tmp_path: Path) -> None:
    settings = Settings(model_store=tmp_path, api_key=SecretStr(KEY))
    with TestClient(create_app(settings, poll=False)) as keyed:
        for path in ("/docs", "/redoc", f"{DOCS_ASSETS}/swagger-ui-bundle.js"):
            assert keyed.get(path).status_code == 401, path
            assert keyed.get(path, headers={"X-API-Key": KEY}).status_code == 200, path
