"""``churn bench api``: the REST service over loopback HTTP, and the scoring path inside it.

1. Server side, in this process, with the model the service loads: the time of
   one ``Predictor.predict_one`` call, of the whole ``/predict`` handler body
   (validate + score + JSON, :func:`api.routes.predict_one`), and of the naive
   path the fast one replaces — the sklearn pipeline on a one-row DataFrame per request.
2. Over HTTP: ``churn api`` runs in its own process (one worker) and a separate
   load-generator process (:mod:`benchmarks.http_load`) drives it over loopback with
   keep-alive connections, closed loop, at each concurrency level.
3. The peer, in the same run with the same load generator and requests: MLServer's
   scikit-learn runtime serving the same pipeline through the Open Inference
   Protocol V2 (:mod:`benchmarks.mlserver_peer`), its probabilities checked against
   ours first. Left out, with the reason in the report, when MLServer is not installed.

The results go to the terminal and, with ``--write-docs``, into the "API"
section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pandas as pd

from api.bodies import BodyRules, read_one
from api.routes import predict_one
from benchmarks import mlserver_peer
from benchmarks.doc_sections import measured_header, replace_section
from benchmarks.machine import cpu_name, load_average
from benchmarks.progress import BenchmarkError, Progress
from config.settings import Settings
from devstack.ports import free_port
from devstack.processes import ChurnProcess
from models.live import LiveModel
from models.registry import ModelRegistry
from training.run import TrainConfig, train
from training.synthetic import generate

DOC_START = "<!-- churn bench api: start -->"
DOC_END = "<!-- churn bench api: end -->"
#: The module each HTTP load run executes as ``python -m HTTP_LOAD ...``.
HTTP_LOAD = "benchmarks.http_load"


@dataclass(frozen=True)
class ApiPlan:
    """What one ``churn bench api`` measures."""

    seconds: float
    concurrency: list[int]
    batch: int
    iterations: int
    access_log: bool
    write_docs: Path | None = None
    workers: int = 1
    #: MLServer's Python (None: ``.venv-mlserver``); see :mod:`benchmarks.mlserver_peer`.
    mlserver_python: Path | None = None
    mlserver: bool = True


def run(settings: Settings, plan: ApiPlan, progress: Progress) -> dict[str, Any]:
    """Measure the server side and the HTTP runs of ``plan``; the results, ready for :func:`markdown`."""
    machine = _machine()
    with tempfile.TemporaryDirectory(prefix="churn-bench-api-") as tmp:
        work = Path(tmp)
        model_store = _ensure_model(settings.model_store, work, progress)
        body = _sample_body()
        progress.print("[bold]server side[/] (in process, same model)...")
        server_side = _server_side(settings, model_store, body, plan.iterations)
        http = _http(model_store, work, body, plan, progress)
        peer = _mlserver(model_store, work, body, plan, progress) if plan.mlserver else None
    results: dict[str, Any] = {"server_side": server_side, "http": http, "machine": machine}
    results.update(date=_today(), workers=plan.workers)
    if peer is not None:
        results["mlserver"] = peer
    results["command"] = _command_line(plan)
    return results


# ----------------------------------------------------------------- set-up
def _ensure_model(store: Path, work: Path, progress: Progress) -> Path:
    if ModelRegistry(store).current() is not None:
        return store
    target = work / "store"
    progress.print(f"no model in {store}: training a small one in {target}")
    train(TrainConfig(store=target, candidates=["spline_logistic"], plots=False, rows=3000))
    return target


def _sample_body() -> dict[str, Any]:
    row = generate(1, seed=2024).drop(columns=["churn"]).to_dict("records")[0]
    return {str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


# ----------------------------------------------------------- server side
def _timed(fn: Callable[[], object], n: int) -> dict[str, float]:
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


def _server_side(settings: Settings, store: Path, body: dict[str, Any], iterations: int) -> dict[str, Any]:
    live = LiveModel(ModelRegistry(store))
    live.refresh()
    predictor = live.predictor
    if predictor is None:
        raise BenchmarkError(f"no model could be loaded from {store}")
    raw = orjson.dumps(body)
    rules = BodyRules(settings.max_event_bytes, settings.max_event_time_skew_s, settings.api_max_batch)
    request = read_one(raw, rules)
    row = {name: getattr(request, name) for name in type(request).model_fields}

    def handler() -> bytes:
        return orjson.dumps(predict_one(predictor, read_one(raw, rules)))

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
    store: Path, work: Path, body: dict[str, Any], plan: ApiPlan, progress: Progress
) -> list[dict[str, Any]]:
    port = free_port()
    single = work / "one.json"
    single.write_text(json.dumps(body))
    many = work / "batch.json"
    rows = [{**body, "customer_id": f"{body['customer_id']}-{i}"} for i in range(plan.batch)]
    many.write_text(json.dumps(rows))
    log_path = work / "server.log"
    flag = "--access-log" if plan.access_log else "--no-access-log"
    env = {**os.environ, "CHURN_API_MAX_BATCH": str(max(plan.batch, 1000))}
    args = ["api", "--port", str(port), "--store", str(store), "--workers", str(plan.workers), flag]
    server = ChurnProcess(args, env, log_path)
    try:
        _wait_ready(server, port)
        steps = [("/predict", single, c, 1) for c in plan.concurrency]
        steps.append(("/predict/batch", many, 1, plan.batch))
        runs = _load_steps(port, steps, plan.seconds, progress, "churn api")
        for result in runs:
            result["access_log"] = plan.access_log
        return runs
    finally:
        server.stop(timeout=30)


def _load_steps(
    port: int, steps: list[tuple[str, Path, int, int]], seconds: float, progress: Progress, label: str
) -> list[dict[str, Any]]:
    """One load-generator run per (path, body file, connections, rows per request)."""
    runs = []
    for path, payload, connections, per_request in steps:
        progress.print(
            f"[bold]HTTP[/] {label} POST {path} ({per_request} row(s)/request), {connections} connection(s)"
        )
        load = [sys.executable, "-m", HTTP_LOAD, "--port", str(port), "--path", path]
        load += ["--body-file", str(payload), "--concurrency", str(connections)]
        load += ["--seconds", str(seconds)]
        out = subprocess.run(load, check=True, capture_output=True, text=True)
        result = json.loads(out.stdout)
        result.update(path=path, rows_per_request=per_request)
        runs.append(result)
    return runs


def _mlserver(
    store: Path, work: Path, body: dict[str, Any], plan: ApiPlan, progress: Progress
) -> dict[str, Any]:
    """The MLServer rows: the same pipeline, requests and load generator; or why there are none."""
    python = mlserver_peer.mlserver_python(plan.mlserver_python)
    if python is None:
        progress.print(f"[bold red]{mlserver_peer.MISSING}[/]; the MLServer rows are left out")
        return {"missing": mlserver_peer.MISSING}
    live = LiveModel(ModelRegistry(store))
    live.refresh()
    predictor = live.predictor
    if predictor is None:
        raise BenchmarkError(f"no model could be loaded from {store}")
    check_rows = [
        {str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in generate(500, seed=77).drop(columns=["churn"]).to_dict("records")
    ]
    for row in check_rows:
        if isinstance(row.get("total_charges"), float) and row["total_charges"] != row["total_charges"]:
            row["total_charges"] = None
    peer = mlserver_peer.MLServerPeer(python, predictor.pipeline, work)
    single = work / "v2-one.json"
    single.write_text(json.dumps(mlserver_peer.v2_body([body])))
    many = work / "v2-batch.json"
    rows = [{**body, "customer_id": f"{body['customer_id']}-{i}"} for i in range(plan.batch)]
    many.write_text(json.dumps(mlserver_peer.v2_body(rows)))
    progress.print(f"[bold]MLServer[/] starting ({python})...")
    try:
        peer.start()
        ours = predictor.predict_batch(check_rows).tolist()
        difference = mlserver_peer.max_difference(ours, peer.probabilities(check_rows))
        path = mlserver_peer.INFER_PATH
        steps = [(path, single, c, 1) for c in plan.concurrency]
        steps.append((path, many, 1, plan.batch))
        runs = _load_steps(peer.port, steps, plan.seconds, progress, "MLServer")
    finally:
        peer.stop()
    return {
        "version": mlserver_peer.mlserver_version(python),
        "max_abs_difference": difference,
        "checked_rows": len(check_rows),
        "http": runs,
    }


def _wait_ready(server: ChurnProcess, port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not server.running():
            raise BenchmarkError(f"the API exited early:\n{server.log_path.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise BenchmarkError(f"the API did not become ready within {timeout:.0f} s")
        time.sleep(0.1)


# --------------------------------------------------------------- reporting
def _machine() -> str:
    return (
        f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} "
        f"(load average {load_average():.1f} when the run started)"
    )


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def _command_line(plan: ApiPlan) -> str:
    parts = ["churn bench api", f"--seconds {plan.seconds:g}"]
    parts += [f"-c {c}" for c in plan.concurrency]
    parts += [f"--batch {plan.batch}", f"--iterations {plan.iterations}"]
    parts += [f"--workers {plan.workers}"] if plan.workers != 1 else []
    parts += ["--access-log"] if plan.access_log else []
    parts += [] if plan.mlserver else ["--no-mlserver"]
    parts += [f"--write-docs {plan.write_docs}"] if plan.write_docs else []
    return " ".join(parts)


def markdown(results: dict[str, Any]) -> str:
    """The API section of docs/benchmarks.md, between its markers."""
    s = results["server_side"]
    lines = [
        *measured_header("## API", DOC_START, results),
        f"Model: `{s['model']}` version `{s['version']}`, trained on {s['trained_on']} "
        f"(compiled fast path: {'yes' if s['fast_path'] else 'no'}); `make model` trains such a "
        "model into `model-store/` when none is there.",
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
        lines.append(f"| {label} | {us(m['p50_us'])} | {us(m['p99_us'])} | {us(m['mean_us'])} |")
    lines += [
        "",
        f"The fast path is {s['speedup_p50']:,.0f}x faster than the naive one at the median, "
        f"and gives the same probability (difference {s['max_abs_difference']:.1e}).",
        "",
        f"**Over loopback HTTP** (`churn api`, {results.get('workers', 1)} uvicorn worker(s), access log "
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
    peer = results.get("mlserver")
    if peer is not None and "missing" not in peer:
        for r in peer["http"]:
            lines.append(
                f"| MLServer V2 ({r['rows_per_request']} row{'s' if r['rows_per_request'] > 1 else ''}) "
                f"| {r['concurrency']} | {r['rps']:,.0f} | {r['rps'] * r['rows_per_request']:,.0f} "
                f"| {r['p50_ms']:.2f} ms | {r['p90_ms']:.2f} ms | {r['p99_ms']:.2f} ms | {r['errors']} |"
            )
        lines += [
            "",
            f"Peer: {peer['version']}, scikit-learn runtime (`mlserver_sklearn.SKLearnModel`, "
            "`predict_proba`), the same pipeline dumped with joblib, Open Inference Protocol V2 with "
            "the pandas codec (one input per feature), one worker (`parallel_workers: 1`), "
            "`OMP_NUM_THREADS=1`, run after `churn api` with the same load generator. Its churn "
            f"probabilities on {peer['checked_rows']} rows differ from ours by at most "
            f"{peer['max_abs_difference']:.1e}.",
        ]
        lines += _peer_ratios(results["http"], peer["http"])
    elif peer is not None:
        lines += ["", f"MLServer peer: not measured ({peer['missing']})."]
    lines += [
        "",
        "Targets: server-side scoring p50 < 1 ms; over HTTP at 8 connections p50 <= 2 ms, "
        "p99 <= 10 ms and >= 1,500 requests/s with one worker. Both processes share the "
        "machine's cores, so the load generator's own CPU time is part of these figures.",
        DOC_END,
    ]
    return "\n".join(lines) + "\n"


def _peer_ratios(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> list[str]:
    """``churn api`` / MLServer requests per second, for each matching (rows, connections) run."""
    by_shape = {(r["rows_per_request"], r["concurrency"]): r["rps"] for r in theirs}
    cells = []
    for r in ours:
        peer = by_shape.get((r["rows_per_request"], r["concurrency"]))
        if peer:
            rows = r["rows_per_request"]
            cells.append(
                f"{r['rps'] / peer:.1f}x ({rows} row{'s' if rows > 1 else ''}, {r['concurrency']} conn.)"
            )
    return ["", "churn api / MLServer, requests/s: " + ", ".join(cells) + "."] if cells else []


def us(value: float) -> str:
    """Microseconds for people: µs below a millisecond, ms above."""
    return f"{value / 1000:.2f} ms" if value >= 1000 else f"{value:.1f} µs"


def write_docs(path: Path, results: dict[str, Any]) -> None:
    """Replace this benchmark's section (between its markers) or append it; other sections stay."""
    replace_section(path, DOC_START, DOC_END, markdown(results), heading="## API")


def server_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    """Path, p50, p99 and mean of each server-side measurement, for a terminal table."""
    s = results["server_side"]
    rows: list[tuple[str, ...]] = []
    for label, key in (("predict_one", "predict_one"), ("/predict handler", "handler"), ("naive", "naive")):
        m = s[key]
        rows.append((label, us(m["p50_us"]), us(m["p99_us"]), us(m["mean_us"])))
    return rows


def http_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    """Request, connections, requests/s, rows/s, p50, p90, p99 and errors of each HTTP run."""
    return [
        (
            f"POST {r['path']} x{r['rows_per_request']}",
            str(r["concurrency"]),
            f"{r['rps']:,.0f}",
            f"{r['rps'] * r['rows_per_request']:,.0f}",
            f"{r['p50_ms']:.2f} ms",
            f"{r['p90_ms']:.2f} ms",
            f"{r['p99_ms']:.2f} ms",
            str(r["errors"]),
        )
        for r in results["http"]
    ]
