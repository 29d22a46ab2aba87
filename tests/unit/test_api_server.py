"""The HTTP server's limits over real sockets: uvicorn in a thread, configured as `churn api` does.

Header size (431 and close, memory bounded), header and read timeouts (a slow client is cut
off), keep-alive timeout, the concurrency limit (503), the request limit, and forwarded
headers believed only from trusted proxies (the limiter and the access log see the real peer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import uvicorn
from uvicorn.server import ServerState

from api.app import create_app
from api.server import GuardedProtocol, ServerConfig, server_config
from config.settings import Settings
from devstack.ports import free_port
from tests.support.api_support import Store, customer, records, store_copy


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return store_copy(tmp_path_factory)


@contextlib.contextmanager
def serving(store: Store, config: uvicorn.Config | None = None, **values: Any) -> Iterator[int]:
    """``churn api``'s server for these settings in a thread; yields its port."""
    settings = Settings(model_store=store.path, api_port=free_port(), **values)
    server = uvicorn.Server(config or server_config(settings, create_app(settings, poll=False)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield settings.api_port
    finally:
        server.should_exit = True
        thread.join(15)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body[:length]


def closed(sock: socket.socket, within: float) -> bool:
    """Whether the server closes ``sock`` within ``within`` seconds (reading and dropping data)."""
    sock.settimeout(within)
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return False


def request(path: str, body: bytes = b"", headers: str = "") -> bytes:
    method = "POST" if body else "GET"
    extra = f"content-type: application/json\r\ncontent-length: {len(body)}\r\n" if body else ""
    return f"{method} {path} HTTP/1.1\r\nhost: t\r\n{extra}{headers}\r\n".encode() + body


def rss_mb() -> float:
    """This process's resident memory now (the server runs in a thread of it)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


@contextlib.contextmanager
def peak_rss_growth() -> Iterator[list[float]]:
    """The highest resident memory above the starting point, sampled every 5 ms, while the block runs."""
    before = rss_mb()
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb() - before)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()


# --- header size ------------------------------------------------------------------------------
def _send_big_header(port: int, megabytes: int) -> tuple[int | None, int]:
    """A request whose one header is ``megabytes`` MB; the status answered (None: none) and bytes sent."""
    sock = connect(port)
    sent = 0
    chunk = b"a" * 65536
    try:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: t\r\nx-big: ")
        while sent < megabytes * 1024 * 1024:
            sock.sendall(chunk)
            sent += len(chunk)
        sock.sendall(b"\r\n\r\n")
    except OSError:
        pass  # the server closed the connection while we were still sending: the point
    try:
        status, _, body = read_response(sock)
    except OSError:
        return None, sent
    finally:
        sock.close()
    if status == 431:
        assert orjson.loads(body)["error"] == "headers_too_large"
    return status, sent


def test_oversized_headers_get_431_and_the_connection_closes(store: Store) -> None:
    with serving(store, api_max_header_bytes=16 * 1024) as port:
        sock = connect(port)
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: t\r\nx-big: " + b"a" * 20_000)
        status, headers, body = read_response(sock)
        assert status == 431
        assert headers["connection"] == "close"
        assert orjson.loads(body)["error"] == "headers_too_large"
        assert closed(sock, within=5)


def test_many_huge_headers_at_once_do_not_grow_memory(store: Store) -> None:
    """The finding: four connections with 50 MB headers took the process from 205 to 404 MB."""
    with serving(store) as port:
        results: list[tuple[int | None, int]] = []
        threads = [
            threading.Thread(target=lambda: results.append(_send_big_header(port, 50))) for _ in range(4)
        ]
        with peak_rss_growth() as peak:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        grown = peak[0]
        sock = connect(port)
        sock.sendall(request("/health"))
        assert read_response(sock)[0] == 200  # and the server still answers
    assert len(results) == 4
    assert all(sent < 50 * 1024 * 1024 for _, sent in results), "the server read whole 50 MB headers"
    assert grown < 30, f"peak RSS grew by {grown:.0f} MB"


def test_plain_uvicorn_would_read_any_header(store: Store) -> None:
    """Why the server config matters: uvicorn's own httptools protocol reads a 40 MB header whole."""
    settings = Settings(model_store=store.path)
    port = free_port()
    plain = uvicorn.Config(create_app(settings, poll=False), port=port, log_config=None, lifespan="on")
    with serving(store, config=plain), peak_rss_growth() as peak:
        status, sent = _send_big_header(port, 40)
    assert (status, sent) == (200, 40 * 1024 * 1024)
    assert peak[0] > 30, f"peak RSS grew by {peak[0]:.0f} MB only"


def test_headers_under_the_limit_and_big_bodies_pass(store: Store) -> None:
    """Only the head counts: a body arriving in the same packets as the head is not a large head."""
    with serving(store, api_max_header_bytes=4096) as port:
        sock = connect(port)
        sock.sendall(request("/health", headers="x-pad: " + "p" * 3500 + "\r\n"))
        assert read_response(sock)[0] == 200
        body = orjson.dumps(records(300))  # ~150 kB, sent in one go with its head
        assert len(body) > 100_000
        sock.sendall(request("/predict/batch", body))
        status, _, answer = read_response(sock)
        assert status == 200, answer[:200]
        assert orjson.loads(answer)["count"] == 300


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


@pytest.mark.parametrize(
    ("packet", "refused"),
    [
        # two pipelined 3 kB heads in one read: each under the 4 kB limit, together over it
        (request("/a", headers="x-pad: " + "p" * 3000 + "\r\n") * 2, False),
        # a head under the limit followed, in the same read, by a 60 kB body
        (request("/a", b"x" * 60_000), False),
        # one head over the limit, however it is split
        (b"GET /a HTTP/1.1\r\nx-pad: " + b"p" * 5000, True),
    ],
)
def test_only_head_bytes_count_against_the_limit(packet: bytes, refused: bool) -> None:
    """The protocol itself, fed in one read and byte by byte (deterministic, no server)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    for chunks in ([packet], [packet[i : i + 1] for i in range(len(packet))]):
        loop = asyncio.new_event_loop()
        try:
            config = ServerConfig(app, max_header_bytes=4096, header_timeout_s=10, read_timeout_s=30)
            config.load()
            protocol = GuardedProtocol(config, ServerState(), {}, _loop=loop)
            transport = FakeTransport()
            protocol.connection_made(transport)
            for chunk in chunks:
                protocol.data_received(chunk)
                loop.run_until_complete(asyncio.sleep(0))  # let the app answer what arrived
            for _ in range(5):
                loop.run_until_complete(asyncio.sleep(0))
            assert transport.written.startswith(b"HTTP/1.1 431") is refused
            assert transport.closing is refused
            if not refused:
                assert transport.written.count(b"HTTP/1.1 204") == packet.count(b"HTTP/1.1\r\n")
            protocol.connection_lost(None)
        finally:
            loop.close()


# --- time limits ------------------------------------------------------------------------------
def test_a_slow_header_connection_is_closed_after_the_header_timeout(store: Store) -> None:
    """The finding: a slow-header connection was still open after 70 s."""
    with serving(store, api_header_timeout_s=1.0) as port:
        sock = connect(port)
        started = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        answer = b""
        try:
            for i in range(40):  # one header line every 0.1 s, never finishing
                sock.sendall(f"x-slow-{i}: y\r\n".encode())
                time.sleep(0.1)
                sock.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    answer += sock.recv(4096)
                sock.setblocking(True)
                if answer:
                    break
        except OSError:
            pass
        elapsed = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"header_timeout" in answer
        assert 0.9 < elapsed < 2.5, elapsed
        assert closed(sock, within=2)


def test_a_connection_that_sends_nothing_is_closed(store: Store) -> None:
    with serving(store, api_header_timeout_s=0.5) as port:
        sock = connect(port)
        started = time.monotonic()
        status, _, _ = read_response(sock)
        assert status == 408
        assert time.monotonic() - started < 2
        assert closed(sock, within=2)


def test_a_kept_alive_connection_gets_the_header_timeout_for_its_next_request(store: Store) -> None:
    with serving(store, api_header_timeout_s=0.6, api_keepalive_timeout_s=30) as port:
        sock = connect(port)
        sock.sendall(request("/health"))
        assert read_response(sock)[0] == 200
        sock.sendall(b"GET /health HTTP/1.1\r\n")  # ...and never the rest
        started = time.monotonic()
        assert read_response(sock)[0] == 408
        assert time.monotonic() - started < 2


def test_a_slow_body_is_cut_at_the_read_timeout(store: Store) -> None:
    with serving(store, api_read_timeout_s=1.0, api_request_timeout_s=0) as port:
        sock = connect(port)
        started = time.monotonic()
        head = (
            "POST /predict HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n"
        )
        sock.sendall(head.encode() + b"\r\n{")
        dropped = False
        for _ in range(40):
            try:
                sock.sendall(b" ")
            except OSError:
                dropped = True
                break
            if closed(sock, within=0.1):
                dropped = True
                break
        assert dropped
        assert 0.9 < time.monotonic() - started < 3


def test_an_idle_kept_alive_connection_is_closed_after_the_keepalive_timeout(store: Store) -> None:
    with serving(store, api_keepalive_timeout_s=1) as port:
        sock = connect(port)
        sock.sendall(request("/health"))
        assert read_response(sock)[0] == 200
        started = time.monotonic()
        assert closed(sock, within=3)
        assert 0.8 < time.monotonic() - started < 2.5


# --- how much at once ---------------------------------------------------------------------------
def test_more_than_the_concurrency_limit_gets_503(store: Store) -> None:
    with serving(store, api_limit_concurrency=3) as port:
        held = [connect(port) for _ in range(3)]  # three open connections use the whole budget
        time.sleep(0.2)
        sock = connect(port)
        sock.sendall(request("/health"))
        assert read_response(sock)[0] == 503
        for other in held:
            other.close()
        sock.close()
        time.sleep(0.2)
        sock = connect(port)
        sock.sendall(request("/health"))
        assert read_response(sock)[0] == 200


def test_the_server_stops_after_its_request_limit(store: Store) -> None:
    """``CHURN_API_LIMIT_MAX_REQUESTS``: the process exits for its supervisor to start a fresh one."""
    settings = Settings(model_store=store.path, api_port=free_port(), api_limit_max_requests=3)
    server = uvicorn.Server(server_config(settings, create_app(settings, poll=False)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    for _ in range(3):
        sock = connect(settings.api_port)
        sock.sendall(request("/health"))
        assert read_response(sock)[0] == 200
        sock.close()
    thread.join(15)
    assert not thread.is_alive()


# --- forwarded headers --------------------------------------------------------------------------
def test_forwarded_addresses_from_an_untrusted_peer_are_ignored(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """The finding: uvicorn trusted X-Forwarded-For from 127.0.0.1, so five spoofed addresses
    got five 200s past the limit and the access log recorded the fake addresses."""
    with (
        caplog.at_level(logging.INFO, logger="uvicorn.access"),
        serving(store, api_rate_limit="3/minute", api_access_log=True) as port,
    ):
        statuses = []
        for i in range(6):
            sock = connect(port)
            sock.sendall(request("/predict", orjson.dumps(customer()), f"x-forwarded-for: 203.0.113.{i}\r\n"))
            statuses.append(read_response(sock)[0])
            sock.close()
    assert statuses == [200, 200, 200, 429, 429, 429]
    assert "203.0.113." not in caplog.text
    assert "127.0.0.1" in caplog.text


def test_forwarded_addresses_from_a_trusted_proxy_name_the_client(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="uvicorn.access"),
        serving(
            store, api_rate_limit="1/minute", api_access_log=True, api_trusted_proxies=["127.0.0.1"]
        ) as port,
    ):
        statuses = []
        for i in (1, 2, 1):
            sock = connect(port)
            sock.sendall(request("/predict", orjson.dumps(customer()), f"x-forwarded-for: 203.0.113.{i}\r\n"))
            statuses.append(read_response(sock)[0])
            sock.close()
    assert statuses == [200, 200, 429]  # one budget per real client, the proxy's address is not one
    assert "203.0.113.1" in caplog.text


def test_the_server_header_is_not_sent(store: Store) -> None:
    with serving(store) as port:
        sock = connect(port)
        sock.sendall(request("/health"))
        _, headers, _ = read_response(sock)
    assert "server" not in headers
