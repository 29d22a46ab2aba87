"""A TCP proxy in front of a Kafka broker that can hold one client's Produce requests: an outage on cue.

Consuming keeps working while the chosen producer's writes hang, which is what a
delivery failure looks like to the scorer (a partition leader gone, a full disk, a
network partition between the producer and the broker), without stopping the broker.
Start the broker with its advertised listener set to the proxy so that every client
connection goes through it. Requests are read frame by frame (a 4-byte size, then
the request header: api key, api version, correlation id, client id); responses are
copied as they come.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field

PRODUCE_API_KEY = 0


@dataclass
class _Connection:
    client: socket.socket
    upstream: socket.socket
    lock: threading.Lock = field(default_factory=threading.Lock)
    held: list[bytes] = field(default_factory=list)


class KafkaProxy:
    """Forwards ``listen`` to ``upstream``; :meth:`hold` parks Produce requests of matching clients."""

    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self._server = socket.create_server((host, 0))
        self.address = f"{host}:{self._server.getsockname()[1]}"
        self._prefix: bytes | None = None
        self._connections: list[_Connection] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.held_requests = 0

    def start(self) -> KafkaProxy:
        threading.Thread(target=self._accept, name="kafka-proxy", daemon=True).start()
        return self

    def hold(self, client_id_prefix: str) -> None:
        """From now on, park the Produce requests of clients whose id starts with the prefix."""
        self._prefix = client_id_prefix.encode()

    def release(self) -> None:
        """Forward every parked request, in order, and stop parking."""
        self._prefix = None
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with conn.lock:
                held, conn.held = conn.held, []
                for frame in held:
                    with contextlib.suppress(OSError):
                        conn.upstream.sendall(frame)

    def stop(self) -> None:
        self._stopped.set()
        self._server.close()
        with self._lock:
            for conn in self._connections:
                for sock in (conn.client, conn.upstream):
                    with contextlib.suppress(OSError):
                        sock.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            conn = _Connection(client, upstream)
            with self._lock:
                self._connections.append(conn)
            threading.Thread(target=self._requests, args=(conn,), daemon=True).start()
            threading.Thread(target=self._responses, args=(conn,), daemon=True).start()

    def _requests(self, conn: _Connection) -> None:
        try:
            while True:
                size_bytes = _read_exactly(conn.client, 4)
                (size,) = struct.unpack(">i", size_bytes)
                frame = size_bytes + _read_exactly(conn.client, size)
                with conn.lock:
                    # Once one request waits, the ones behind it on this connection wait too (order).
                    if conn.held or self._holds(frame):
                        conn.held.append(frame)
                        self.held_requests += 1
                    else:
                        conn.upstream.sendall(frame)
        except (OSError, ConnectionError, struct.error):
            self._close(conn)

    def _holds(self, frame: bytes) -> bool:
        prefix = self._prefix
        if prefix is None:
            return False
        (api_key,) = struct.unpack(">h", frame[4:6])
        if api_key != PRODUCE_API_KEY:
            return False
        (length,) = struct.unpack(">h", frame[12:14])  # after api key, version and correlation id
        client_id = frame[14 : 14 + max(length, 0)]
        return client_id.startswith(prefix)

    def _responses(self, conn: _Connection) -> None:
        try:
            while data := conn.upstream.recv(65536):
                conn.client.sendall(data)
        except OSError:
            pass
        self._close(conn)

    def _close(self, conn: _Connection) -> None:
        for sock in (conn.client, conn.upstream):
            with contextlib.suppress(OSError):
                sock.close()
        with self._lock, contextlib.suppress(ValueError):
            self._connections.remove(conn)


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            raise ConnectionError("closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)
