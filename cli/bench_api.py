"""``churn bench api``: the REST service over loopback HTTP, and the scoring path inside it.

The measuring is done by :mod:`benchmarks.api_bench`; this command reads the
options and prints the tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from cli.console import console, fail, overridden


def command(
    ctx: typer.Context,
    store: Path | None = typer.Option(None, "--store", help="Model store (trains a small model if empty)."),
    seconds: float = typer.Option(5.0, "--seconds", min=0.5, help="Measured seconds per HTTP run."),
    concurrency: list[int] = typer.Option([1, 8], "--concurrency", "-c", help="Connections (repeatable)."),
    batch: int = typer.Option(100, "--batch", min=1, help="Rows per /predict/batch request."),
    iterations: int = typer.Option(5000, "--iterations", help="Calls per server-side measurement."),
    workers: int = typer.Option(1, "--workers", min=1, help="API worker processes for the HTTP runs."),
    access_log: bool | None = typer.Option(
        None, "--access-log/--no-access-log", help="Server access log (env CHURN_API_ACCESS_LOG, off)."
    ),
    write_docs: Path | None = typer.Option(
        None, "--write-docs", help="Write the results into this Markdown file (e.g. docs/benchmarks.md)."
    ),
    mlserver: bool = typer.Option(
        True, "--mlserver/--no-mlserver", help="Also measure the MLServer peer (when installed)."
    ),
    mlserver_python: Path | None = typer.Option(
        None,
        "--mlserver-python",
        help="Python of MLServer's own environment (default .venv-mlserver/bin/python, "
        "`make mlserver-venv`).",
    ),
) -> None:
    """Measure /predict latency and throughput over HTTP and the naive one-row sklearn path."""
    # The benchmark loads the API, sklearn and pandas: imported when it runs, not for `churn --help`.
    from benchmarks import api_bench
    from benchmarks.progress import BenchmarkError

    settings = overridden(ctx.obj, model_store=store, api_access_log=access_log)
    plan = api_bench.ApiPlan(
        seconds=seconds,
        concurrency=concurrency,
        batch=batch,
        iterations=iterations,
        access_log=bool(settings.api_access_log),
        write_docs=write_docs,
        workers=workers,
        mlserver_python=mlserver_python,
        mlserver=mlserver,
    )
    try:
        results = api_bench.run(settings, plan, console)
    except BenchmarkError as exc:
        fail(str(exc))
    _print(results, workers, api_bench.server_rows(results), api_bench.http_rows(results))
    if write_docs is not None:
        api_bench.write_docs(write_docs, results)
        console.print(f"results written to {write_docs}")


def _print(
    results: dict[str, Any],
    workers: int,
    server_rows: list[tuple[str, ...]],
    http_rows: list[tuple[str, ...]],
) -> None:
    s = results["server_side"]
    table = Table(title=f"server side ({s['model']}, fast path {s['fast_path']})")
    for column in ("path", "p50", "p99", "mean"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for row in server_rows:
        table.add_row(*row)
    console.print(table)
    console.print(f"fast path {s['speedup_p50']:,.0f}x faster than the naive one at p50")
    http = Table(title=f"over loopback HTTP ({workers} worker(s))")
    for column in ("request", "conn", "req/s", "rows/s", "p50", "p90", "p99", "errors"):
        http.add_column(column, justify="left" if column == "request" else "right")
    for row in http_rows:
        http.add_row(*row)
    console.print(http)
    peer = results.get("mlserver")
    if peer is not None and "missing" not in peer:
        console.print(f"MLServer peer: {peer['version']}, max |difference| {peer['max_abs_difference']:.1e}")
        for r in peer["http"]:
            console.print(
                f"  MLServer x{r['rows_per_request']} conn {r['concurrency']}: {r['rps']:,.0f} req/s, "
                f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, errors {r['errors']}"
            )
