"""The HTTP server of ``churn api``: uvicorn with httptools, plus the limits uvicorn does not have.

uvicorn's httptools protocol (the fast one: ~45 % more requests/s than h11 here)
buffers a request head of any size and waits for it forever: no header-size
limit, and its keep-alive timer is reset by every byte, so a client trickling a
header holds a connection (and its memory) as long as it likes. h11 has a size
limit (``h11_max_incomplete_event_size``) but no time limit either.
:class:`GuardedProtocol` adds both to the httptools protocol:

* **header size**: the bytes of a request line + headers are counted as they
  arrive; past ``CHURN_API_MAX_HEADER_BYTES`` the answer is 431 and the
  connection closes (memory stays bounded by the limit plus one socket read);
* **header timeout**: a connection must deliver a complete request head within
  ``CHURN_API_HEADER_TIMEOUT_S`` of opening or of the request's first byte,
  else it is answered 408 and closed — a slow-header client cannot hold it;
* **read timeout**: the whole request, body included, must arrive within
  ``CHURN_API_READ_TIMEOUT_S`` of its first byte, else the connection closes.

The rest comes from uvicorn's own options (:func:`server_config`): keep-alive
timeout, ``limit_concurrency`` (open connections + running requests; over it,
503), listen backlog, ``limit_max_requests``, and forwarded headers trusted only
from ``CHURN_API_TRUSTED_PROXIES`` (uvicorn trusts 127.0.0.1 by default; here
nobody unless configured).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from prometheus_client.multiprocess import mark_process_dead
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState
from uvicorn.supervisors import Multiprocess

from api.auth import KeyConfigError, KeyStore
from api.main import FACTORY, MULTIPROC_DIR_ENV
from config.settings import Settings

log = logging.getLogger(__name__)

#: The import string uvicorn resolves in every worker process.
PROTOCOL = "api.server:GuardedProtocol"


class ServerConfig(uvicorn.Config):
    """uvicorn's configuration plus the limits :class:`GuardedProtocol` enforces.

    A module-level class, so it reaches ``--workers`` processes intact (they receive it pickled).
    """

    def __init__(
        self,
        app: Any,
        *,
        max_header_bytes: int,
        header_timeout_s: float,
        read_timeout_s: float,
        **options: Any,
    ) -> None:
        super().__init__(app, http=PROTOCOL, **options)
        self.max_header_bytes = max_header_bytes
        self.header_timeout_s = header_timeout_s
        self.read_timeout_s = read_timeout_s


def _response(status: int, reason: str, error: str, message: str) -> bytes:
    body = orjson.dumps({"error": error, "message": message, "errors": []})
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header-size limit and header/read deadlines."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_header_bytes: int = getattr(config, "max_header_bytes", 16 * 1024)
        self.header_timeout_s: float = getattr(config, "header_timeout_s", 10.0)
        self.read_timeout_s: float = getattr(config, "read_timeout_s", 30.0)
        self._head_bytes = 0
        self._in_head = True  # waiting for (the rest of) a request line and headers
        self._refused = False
        self._deadline: asyncio.TimerHandle | None = None
        self._request_started = 0.0

    # -- connection ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._request_started = self.loop.time()
        self._arm(self.header_timeout_s, self._header_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # Only the head counts against the limit: a chunk that also carries the body (or the
        # next pipelined request) is fed in two parts, the first up to the limit.
        while data and not self._refused and not self.transport.is_closing():
            if not self._in_head:
                super().data_received(data)
                return
            allowed = self.max_header_bytes - self._head_bytes
            if len(data) <= allowed:
                self._head_bytes += len(data)
                super().data_received(data)
                return
            head, data = data[:allowed], data[allowed:]
            self._head_bytes += len(head)
            if head:
                super().data_received(head)
            if self._in_head and self._head_bytes >= self.max_header_bytes:
                self._refuse(
                    431,
                    "Request Header Fields Too Large",
                    "headers_too_large",
                    f"the request line and headers are larger than {self.max_header_bytes} bytes",
                )
                return

    # -- parser callbacks ---------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        if self._deadline is None:  # a request on a kept-alive connection: its first byte starts the clock
            self._request_started = self.loop.time()
            self._arm(self.header_timeout_s, self._header_timed_out)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        remaining = self.read_timeout_s - (self.loop.time() - self._request_started)
        self._arm(max(remaining, 0.0), self._read_timed_out)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True
        super().on_message_complete()

    # -- deadlines ----------------------------------------------------------------------
    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _header_timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        log.warning("http_header_timeout client=%s after_s=%s", _peer(self.client), self.header_timeout_s)
        self._refuse(408, "Request Timeout", "header_timeout", "the request headers took too long to arrive")

    def _read_timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        log.warning("http_read_timeout client=%s after_s=%s", _peer(self.client), self.read_timeout_s)
        self._refused = True
        self.transport.close()  # the app, if it waits for the body, receives http.disconnect

    def _refuse(self, status: int, reason: str, error: str, message: str) -> None:
        """Answer ``status`` and close; nothing else from this connection is parsed."""
        self._refused = True
        self._disarm()
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_response(status, reason, error, message))
        self.transport.close()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "unknown"


class MetricsMultiprocess(Multiprocess):
    """uvicorn's worker supervisor that retires the gauges of workers it replaced or stopped.

    Workers write their metrics to ``metrics_dir`` (prometheus-client multiprocess
    mode); a worker that exits (crash, ``limit_max_requests``, SIGHUP/SIGTTOU) has
    its ``live*`` gauge files removed with ``mark_process_dead``; its counters and
    histograms stay, so totals do not go backwards.
    """

    def __init__(self, config: uvicorn.Config, sockets: list[Any], metrics_dir: Path) -> None:
        super().__init__(config, sockets)
        self.metrics_dir = metrics_dir
        self._known: set[int] = set()

    def _retire_exited(self) -> None:
        running = {pid for process in self.processes if (pid := process.pid) is not None}
        for pid in self._known - running:
            mark_process_dead(pid, str(self.metrics_dir))  # type: ignore[no-untyped-call]
            log.info("api_worker_retired pid=%s", pid)
        self._known = running

    def keep_subprocess_alive(self) -> None:
        super().keep_subprocess_alive()
        self._retire_exited()

    def handle_signals(self) -> None:
        super().handle_signals()
        self._retire_exited()


def server_config(settings: Settings, app: Any, **options: Any) -> ServerConfig:
    """The uvicorn configuration of ``churn api`` for ``settings`` (``options`` add or override)."""
    trusted = list(settings.api_trusted_proxies)
    values: dict[str, Any] = {
        "host": settings.api_host,
        "port": settings.api_port,
        "access_log": settings.api_access_log,
        "log_config": None,  # keep the one-line-per-event logging set up by `churn`
        "log_level": settings.log_level.lower(),
        "timeout_graceful_shutdown": 10,
        "server_header": False,
        # X-Forwarded-For/-Proto only from the configured proxies (uvicorn alone trusts 127.0.0.1).
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted,
        "timeout_keep_alive": settings.api_keepalive_timeout_s,
        "limit_concurrency": settings.api_limit_concurrency,
        "backlog": settings.api_backlog,
        "limit_max_requests": settings.api_limit_max_requests,
        "max_header_bytes": settings.api_max_header_bytes,
        "header_timeout_s": settings.api_header_timeout_s,
        "read_timeout_s": settings.api_read_timeout_s,
    }
    return ServerConfig(app, **(values | options))


class UnauthenticatedBindError(KeyConfigError):
    """A non-loopback address without any API key, and no explicit permission for it."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (``localhost``, 127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def check_binding(settings: Settings, keys: KeyStore | None) -> None:
    """Refuse to serve an address other machines reach without a key, unless explicitly allowed."""
    if keys is not None or is_loopback(settings.api_host):
        return
    if settings.api_allow_unauthenticated:
        log.warning("api_unauthenticated host=%s (CHURN_API_ALLOW_UNAUTHENTICATED=true)", settings.api_host)
        return
    raise UnauthenticatedBindError(
        f"refusing to listen on {settings.api_host} without an API key: anyone who reaches it could "
        "score and reload models. Set CHURN_API_KEY (or CHURN_API_KEY_FILE / CHURN_API_KEYS_FILE), "
        "bind 127.0.0.1, or allow it explicitly with --allow-unauthenticated "
        "(CHURN_API_ALLOW_UNAUTHENTICATED=true)"
    )


def serve(settings: Settings) -> None:
    """Run the API until it is told to stop (SIGINT/SIGTERM): one process, or ``api_workers``.

    Unusable key settings raise :class:`api.auth.KeyConfigError` before anything listens, and so
    does a non-loopback address without a key (:class:`UnauthenticatedBindError`), unless
    ``api_allow_unauthenticated``.
    """
    check_binding(settings, KeyStore.from_settings(settings))
    if settings.api_workers == 1:
        from api.app import create_app  # FastAPI and sklearn: only in the process that serves

        uvicorn.Server(server_config(settings, create_app(settings))).run()
        return
    # Worker processes import the factory and build their app from the CHURN_* environment,
    # and store their metrics in a directory of this run, which /metrics in any worker adds up.
    metrics_dir = Path(tempfile.mkdtemp(prefix="churn-api-metrics-"))
    os.environ[MULTIPROC_DIR_ENV] = str(metrics_dir)
    try:
        config = server_config(settings, FACTORY, factory=True, workers=settings.api_workers)
        MetricsMultiprocess(config, [config.bind_socket()], metrics_dir).run()
    finally:
        del os.environ[MULTIPROC_DIR_ENV]
        shutil.rmtree(metrics_dir, ignore_errors=True)
