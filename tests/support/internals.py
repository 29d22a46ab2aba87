"""What no API answer may contain: filesystem paths, stack traces, hashes of stored artifacts.

:class:`ResponseLog` records every response an httpx client (``TestClient`` is one,
and so is the client over ``ASGITransport``) receives during a test;
:func:`leaks` says what in a body looks internal. ``tests/unit/conftest.py``
scans every response of every unit test with it, so each API test is also a
test that its answers leak nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

#: Absolute paths under the usual filesystem roots (URL paths such as /predict are not these).
_ROOTS = (
    "tmp", "home", "root", "usr", "etc", "var", "proc", "opt", "srv", "run", "mnt", "work",
    "private", "Users", "models", "data", "app", "lib", "sys", "dev",
)  # fmt: skip
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:" + "|".join(_ROOTS) + r")/|[A-Za-z]:\\\\|site-packages")
#: Content types of static files, whose bytes the service did not produce.
STATIC_TYPES = ("text/javascript", "application/javascript", "text/css", "image/")
TRACE = re.compile(r"Traceback \(most recent call last\)|File \"")
#: A hash printed elided, the way a sha256 prefix leaked before: "69e3312d80be...".
ELIDED_HEX = re.compile(r"[0-9a-f]{8,}\.\.\.")
HEX_RUN = re.compile(r"[0-9a-f]{10,}")


def known_digests(root: Path) -> set[str]:
    """The sha256 of every artifact listed in a manifest under ``root`` (10-character prefixes)."""
    prefixes: set[str] = set()
    for manifest in root.rglob("manifest.json"):
        try:
            hashes = json.loads(manifest.read_text(encoding="utf-8")).get("sha256", {})
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(hashes, dict):
            prefixes.update(str(v)[:10] for v in hashes.values() if isinstance(v, str) and len(v) >= 10)
    return prefixes


def leaks(body: str, digests: set[str], extra_paths: Iterable[str] = ()) -> list[str]:
    """What in ``body`` is internal: a path, a traceback, an artifact hash (empty when nothing)."""
    found = [m.group(0) for m in ABSOLUTE_PATH.finditer(body)]
    found += [p for p in extra_paths if p and p in body]
    found += [m.group(0) for m in TRACE.finditer(body)]
    found += [m.group(0) for m in ELIDED_HEX.finditer(body)]
    found += [m.group(0) for m in HEX_RUN.finditer(body) if m.group(0)[:10] in digests]
    return found


@dataclass
class ResponseLog:
    """Every (request, status, body) an httpx client received while installed."""

    seen: list[tuple[str, int, str]] = field(default_factory=list)

    def record(self, response: httpx.Response) -> None:
        if response.headers.get("content-type", "").startswith(STATIC_TYPES):
            return  # a packaged file served as it is (the docs' Swagger UI and ReDoc), not an answer
        try:
            body = response.content.decode("utf-8", "replace")
        except httpx.ResponseNotRead:
            return  # a streamed body nobody read is not an answer anyone saw
        request = f"{response.request.method} {response.request.url.path}"
        self.seen.append((request, response.status_code, body))

    def installed(self, monkeypatch: Any) -> None:
        """Wrap ``httpx.Client.send`` and ``httpx.AsyncClient.send`` so every response is recorded."""
        sync_send: Callable[..., httpx.Response] = httpx.Client.send
        async_send: Callable[..., Any] = httpx.AsyncClient.send
        log = self

        def send(client: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            response = sync_send(client, request, **kwargs)
            log.record(response)
            return response

        async def asend(client: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            response = await async_send(client, request, **kwargs)
            log.record(response)
            return response

        monkeypatch.setattr(httpx.Client, "send", send)
        monkeypatch.setattr(httpx.AsyncClient, "send", asend)

    def problems(self, digests: set[str], extra_paths: Iterable[str] = ()) -> Iterator[str]:
        paths = list(extra_paths)
        for request, status, body in self.seen:
            found = leaks(body, digests, paths)
            if found:
                yield f"{request} -> {status}: {sorted(set(found))[:5]} in {body[:300]!r}"
