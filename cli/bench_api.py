"""``churn bench api``: the REST service over loopback HTTP, and the scoring path inside it.

1. Server side, in this process, with the model the service loads: the time of
   one ``Predictor.predict_one`` call, of the whole ``/predict`` handler body
   (validate + score + JSON), and of the naive path the fast one replaces —
   the sklearn pipeline on a one-row DataFrame per request.
2. Over HTTP: ``churn api`` runs in its own process (one worker) and a separate
   load-generator process (:mod:`cli.http_load`) drives it over loopback with
   keep-alive connections, closed loop, at each concurrency level.

The table goes to the terminal and, with ``--write-docs``, into the "API"
section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from cli.console import console, fail

DOC_START = "<!-- churn bench api: start -->"
DOC_END = "<!-- churn bench api: end -->"


def command(
    ctx: typer.Context,
    store: Path | None = typer.Option(None, "--store", help="Model store (trains a small model if empty)."),
    seconds: float = typer.Option(5.0, "--seconds", min=0.5, help="Measured seconds per HTTP run."),
    concurrency: list[int] = typer.Option([1, 8], "--concurrency", "-c", help="Connections (repeatable)."),
    batch: int = typer.Option(100, "--batch", min=1, help="Rows per /predict/batch request."),
    iterations: int = typer.Option(5000, "--iterations", help="Calls per server-side measurement."),
    access_log: bool | None = typer.Option(
        None, "--access-log/--no-access-log", help="Server access log (env CHURN_API_ACCESS_LOG, off)."
    ),
    write_docs: Path | None = typer.Option(
        None, "--write-docs", help="Write the results into this Markdown file (e.g. docs/benchmarks.md)."
    ),
) -> None:
    """Measure /predict latency and throughput over HTTP and the naive one-row sklearn path."""
    settings = ctx.obj.with_overrides(model_store=store, api_access_log=access_log)
    access_log = bool(settings.api_access_log)
    machine = _machine()
    with tempfile.TemporaryDirectory(prefix="churn-bench-api-") as tmp:
        work = Path(tmp)
        model_store = _ensure_model(settings.model_store, work)
        body = _sample_body(work)
        console.print("[bold]server side[/] (in process, same model)...")
        server_side = _server_side(model_store, body, iterations)
        http = _http(model_store, work, body, seconds, concurrency, batch, access_log)
    results = {"server_side": server_side, "http": http, "machine": machine, "date": _today()}
    results["command"] = _command_line(seconds, concurrency, batch, iterations, access_log, write_docs)
    _print(results)
    if write_docs is not None:
        _write_docs(write_docs, results)
        console.print(f"results written to {write_docs}")


# ----------------------------------------------------------------- set-up
def _ensure_model(store: Path, work: Path) -> Path:
    from models.registry import ModelRegistry

    if ModelRegistry(store).current() is not None:
        return store
    from training.run import TrainConfig, train

    target = work / "store"
    console.print(f"no model in {store}: training a small one in {target}")
    train(TrainConfig(store=target, candidates=["spline_logistic"], plots=False, rows=3000))
    return target


def _sample_body(work: Path) -> dict[str, Any]:
    from training.synthetic import generate

    row = generate(1, seed=2024).drop(columns=["churn"]).to_dict("records")[0]
    return {str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ----------------------------------------------------------- server side
def _timed(fn: Any, n: int) -> dict[str, float]:
    clock = time.perf_counter
    for _ in range(min(200, n)):
        fn()
    samples = []
    for _ in range(n):
        started = clock()
        fn()
        samples.append(clock() - started)
    samples.sort()
    return {
        "calls": n,
        "p50_us": samples[n // 2] * 1e6,
        "p99_us": samples[min(n - 1, int(n * 0.99))] * 1e6,
        "mean_us": sum(samples) / n * 1e6,
    }


def _server_side(store: Path, body: dict[str, Any], iterations: int) -> dict[str, Any]:
    import orjson
    import pandas as pd

    from api.routes import prediction_body
    from models.live import LiveModel
    from models.registry import ModelRegistry
    from schemas.events import PredictRequest

    live = LiveModel(ModelRegistry(store))
    live.refresh()
    predictor = live.predictor
    if predictor is None:
        fail(f"no model could be loaded from {store}")
        raise AssertionError  # unreachable; fail() exits
    raw = orjson.dumps(body)
    request = PredictRequest.model_validate(body)
    row = {name: getattr(request, name) for name in type(request).model_fields}

    def handler() -> bytes:
        parsed = PredictRequest.model_validate(orjson.loads(raw))
        probability = predictor.predict_one(parsed)
        return orjson.dumps(prediction_body(parsed, probability, predictor, datetime.now(UTC)))

    fast = _timed(lambda: predictor.predict_one(request), iterations)
    full = _timed(handler, iterations)

    def naive_call() -> Any:
        return predictor.pipeline.predict_proba(pd.DataFrame([row]))

    naive = _timed(naive_call, max(200, iterations // 20))
    same = abs(float(naive_call()[0, 1]) - predictor.predict_one(request))
    return {
        "model": predictor.info.selected_model,
        "version": predictor.version,
        "trained_on": str(predictor.manifest.get("training_data", {}).get("source", "unknown data")),
        "fast_path": predictor.fast_path,
        "predict_one": fast,
        "handler": full,
        "naive": naive,
        "speedup_p50": naive["p50_us"] / fast["p50_us"],
        "max_abs_difference": same,
    }


# ----------------------------------------------------------------- HTTP
def _http(
    store: Path,
    work: Path,
    body: dict[str, Any],
    seconds: float,
    levels: list[int],
    batch: int,
    access_log: bool,
) -> list[dict[str, Any]]:
    import httpx

    port = _free_port()
    single = work / "one.json"
    single.write_text(json.dumps(body))
    many = work / "batch.json"
    many.write_text(json.dumps([{**body, "customer_id": f"{body['customer_id']}-{i}"} for i in range(batch)]))
    churn = Path(sys.executable).with_name("churn")
    log_path = work / "server.log"
    flag = "--access-log" if access_log else "--no-access-log"
    env = {**os.environ, "CHURN_API_MAX_BATCH": str(max(batch, 1000))}
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [str(churn), "api", "--port", str(port), "--store", str(store), "--workers", "1", flag],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                fail(f"the API exited early:\n{log_path.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                fail("the API did not become ready within 60 s")
            time.sleep(0.1)
        runs = []
        plan = [("/predict", single, c, 1) for c in levels] + [("/predict/batch", many, 1, batch)]
        for path, payload, connections, rows in plan:
            console.print(f"[bold]HTTP[/] POST {path} ({rows} row(s)/request), {connections} connection(s)")
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "cli.http_load",
                    "--port",
                    str(port),
                    "--path",
                    path,
                    "--body-file",
                    str(payload),
                    "--concurrency",
                    str(connections),
                    "--seconds",
                    str(seconds),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(out.stdout)
            result.update(path=path, rows_per_request=rows, access_log=access_log)
            runs.append(result)
        return runs
    finally:
        server.terminate()
        server.wait(timeout=30)


# --------------------------------------------------------------- reporting
def _machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} "
        f"(load average {load:.1f} when the run started)"
    )


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def _command_line(
    seconds: float, levels: list[int], batch: int, iterations: int, access_log: bool, docs: Path | None
) -> str:
    parts = ["churn bench api", f"--seconds {seconds:g}"]
    parts += [f"-c {c}" for c in levels]
    parts += [f"--batch {batch}", f"--iterations {iterations}"]
    parts += ["--access-log"] if access_log else []
    parts += [f"--write-docs {docs}"] if docs else []
    return " ".join(parts)


def _markdown(results: dict[str, Any]) -> str:
    s = results["server_side"]
    lines = [
        "## API",
        "",
        DOC_START,
        f"Measured {results['date']} on {results['machine']}, with:",
        "",
        "```",
        results["command"],
        "```",
        "",
        f"Model: `{s['model']}` version `{s['version']}`, trained on {s['trained_on']} "
        f"(compiled fast path: {'yes' if s['fast_path'] else 'no'}); `make model` trains such a "
        "model into `models/store` when none is there.",
        "",
        "**Server side** (in process, one request at a time):",
        "",
        "| path | p50 | p99 | mean |",
        "|---|---:|---:|---:|",
    ]
    for label, key in (
        ("`Predictor.predict_one` (compiled numpy)", "predict_one"),
        ("whole `/predict` handler: validate + score + JSON", "handler"),
        ("naive: `pipeline.predict_proba(pd.DataFrame([row]))`", "naive"),
    ):
        m = s[key]
        lines.append(f"| {label} | {_us(m['p50_us'])} | {_us(m['p99_us'])} | {_us(m['mean_us'])} |")
    lines += [
        "",
        f"The fast path is {s['speedup_p50']:,.0f}x faster than the naive one at the median, "
        f"and gives the same probability (difference {s['max_abs_difference']:.1e}).",
        "",
        "**Over loopback HTTP** (`churn api`, one uvicorn worker, access log "
        f"{'on' if results['http'][0]['access_log'] else 'off'}; a separate load-generator "
        "process, keep-alive connections, closed loop):",
        "",
        "| request | connections | requests/s | rows/s | p50 | p90 | p99 | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["http"]:
        lines.append(
            f"| POST {r['path']} ({r['rows_per_request']} row{'s' if r['rows_per_request'] > 1 else ''}) "
            f"| {r['concurrency']} | {r['rps']:,.0f} | {r['rps'] * r['rows_per_request']:,.0f} "
            f"| {r['p50_ms']:.2f} ms | {r['p90_ms']:.2f} ms | {r['p99_ms']:.2f} ms | {r['errors']} |"
        )
    lines += [
        "",
        "Targets: server-side scoring p50 < 1 ms; over HTTP at 8 connections p50 <= 2 ms, "
        "p99 <= 10 ms and >= 1,500 requests/s with one worker. Both processes share the "
        "machine's cores, so the load generator's own CPU time is part of these figures.",
        DOC_END,
    ]
    return "\n".join(lines) + "\n"


def _us(value: float) -> str:
    return f"{value / 1000:.2f} ms" if value >= 1000 else f"{value:.1f} µs"


def _write_docs(path: Path, results: dict[str, Any]) -> None:
    """Replace this benchmark's section (between its markers) or append it; other sections stay."""
    section = _markdown(results)
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    start, end = text.find(DOC_START), text.find(DOC_END)
    if start != -1 and end != -1:
        heading = text.rfind("## API", 0, start)
        begin = heading if heading != -1 else start
        text = text[:begin] + section + text[end + len(DOC_END) :].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _print(results: dict[str, Any]) -> None:
    from rich.table import Table

    s = results["server_side"]
    table = Table(title=f"server side ({s['model']}, fast path {s['fast_path']})")
    for column in ("path", "p50", "p99", "mean"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for label, key in (("predict_one", "predict_one"), ("/predict handler", "handler"), ("naive", "naive")):
        m = s[key]
        table.add_row(label, _us(m["p50_us"]), _us(m["p99_us"]), _us(m["mean_us"]))
    console.print(table)
    console.print(f"fast path {s['speedup_p50']:,.0f}x faster than the naive one at p50")
    http = Table(title="over loopback HTTP (one worker)")
    for column in ("request", "conn", "req/s", "rows/s", "p50", "p90", "p99", "errors"):
        http.add_column(column, justify="left" if column == "request" else "right")
    for r in results["http"]:
        http.add_row(
            f"POST {r['path']} x{r['rows_per_request']}",
            str(r["concurrency"]),
            f"{r['rps']:,.0f}",
            f"{r['rps'] * r['rows_per_request']:,.0f}",
            f"{r['p50_ms']:.2f} ms",
            f"{r['p90_ms']:.2f} ms",
            f"{r['p99_ms']:.2f} ms",
            str(r["errors"]),
        )
    console.print(http)
