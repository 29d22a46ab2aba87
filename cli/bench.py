"""``churn bench ...``: reproducible benchmarks; each sub-command lives in its own module."""

from __future__ import annotations

import typer

from cli import bench_api, bench_chaos, bench_format, bench_soak, bench_stream

app = typer.Typer(help="Benchmarks (figures in docs/benchmarks.md come from these).", no_args_is_help=True)

app.command("stream")(bench_stream.command)
app.command("api")(bench_api.command)
app.command("chaos")(bench_chaos.command)
app.command("soak")(bench_soak.command)
app.command("format")(bench_format.command)
