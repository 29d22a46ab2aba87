"""A small HTTP/1.1 load generator for ``churn bench api``, run as its own process.

``python -m benchmarks.http_load --port P --path /predict --body-file F --concurrency 8 --seconds 5``
opens ``concurrency`` keep-alive connections on loopback, each sending one
request after the other (closed loop), and prints one JSON object: requests,
errors, requests/s and latency percentiles in milliseconds. It speaks just
enough HTTP/1.1 over raw asyncio streams (Content-Length bodies) to cost the
client a few microseconds per request, so the figures measure the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any


def _request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1" if body else f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Connection: keep-alive",
    ]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    if length:
        await reader.readexactly(length)
    return status


async def _worker(
    host: str, port: int, request: bytes, until: float, warmup_until: float, samples: list[float]
) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    clock = time.perf_counter
    try:
        while True:
            started = clock()
            if started >= until:
                break
            writer.write(request)
            status = await _read_response(reader)
            if status != 200:
                errors += 1
            if started >= warmup_until:
                samples.append(clock() - started)
    finally:
        writer.close()
    return errors


async def run(
    host: str,
    port: int,
    path: str,
    body: bytes,
    concurrency: int,
    seconds: float,
    warmup: float,
    headers: dict[str, str],
) -> dict[str, Any]:
    request = _request(host, port, path, body, headers)
    samples: list[float] = []
    start = time.perf_counter()
    warmup_until = start + warmup
    until = warmup_until + seconds
    errors = await asyncio.gather(
        *(_worker(host, port, request, until, warmup_until, samples) for _ in range(concurrency))
    )
    samples.sort()
    n = len(samples)

    def pct(q: float) -> float:
        return samples[min(n - 1, int(q * n))] * 1000 if n else float("nan")

    return {
        "concurrency": concurrency,
        "requests": n,
        "errors": sum(errors),
        "seconds": seconds,
        "rps": n / seconds,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": samples[-1] * 1000 if n else float("nan"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/predict")
    parser.add_argument("--body-file", type=Path)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--header", action="append", default=[], help="Name: value (repeatable)")
    args = parser.parse_args(argv)
    body = args.body_file.read_bytes() if args.body_file else b""
    headers = dict(h.split(": ", 1) for h in args.header)
    try:
        import uvloop  # optional: the faster event loop, when uvicorn[standard] brought it

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        pass
    result = asyncio.run(
        run(args.host, args.port, args.path, body, args.concurrency, args.seconds, args.warmup, headers)
    )
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
