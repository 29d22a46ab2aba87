"""``churn bench soak``: a producer at a steady rate beside the scorer for minutes; lag, stalls, RSS, audit.

The run is :mod:`benchmarks.soak`; this command reads the options, prints the report,
writes it into the docs when asked and exits non-zero when an engine misses the bar.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cli.console import console, fail


def command(
    ctx: typer.Context,
    engine: str = typer.Option("both", "--engine", help="native, faust or both (one after the other)."),
    rate: float = typer.Option(4000.0, "--rate", min=1.0, help="Events per second of `churn produce`."),
    minutes: float = typer.Option(10.0, "--minutes", min=0.1, help="How long the producer runs."),
    sample_s: float = typer.Option(5.0, "--sample-s", min=0.5, help="Seconds between two samples."),
    store: Path | None = typer.Option(None, "--store", help="Model store (default CHURN_MODEL_STORE)."),
    bootstrap: str | None = typer.Option(None, "--bootstrap", "-b", help="Kafka (default: embedded broker)."),
    workdir: Path | None = typer.Option(
        None, "--workdir", help="Logs of the processes (default: a temp dir)."
    ),
    docs: Path | None = typer.Option(None, "--write-docs", help="Update the soak section of this file."),
) -> None:
    """Every event predicted? Lag back within 30 s of the producer stopping? RSS flat? Stalls recovered?"""
    # The soak loads Kafka clients and starts processes: imported when it runs, not for `churn --help`.
    from benchmarks import soak
    from benchmarks.progress import BenchmarkError

    engines = list(soak.ENGINES) if engine == "both" else [engine]
    if any(name not in soak.ENGINES for name in engines):
        fail(f"--engine must be native, faust or both, not {engine!r}")
    settings = ctx.obj.with_overrides(model_store=store, kafka_bootstrap_servers=bootstrap)
    plan = soak.SoakPlan(engines=engines, rate=rate, minutes=minutes, sample_s=sample_s)
    try:
        report = soak.run(settings, plan, console, workdir)
    except BenchmarkError as exc:
        fail(str(exc))
    text = soak.render_report(report)
    console.print(text, soft_wrap=True, markup=False, highlight=False)  # Markdown, as written to the docs
    if docs is not None:
        soak.write_docs(docs, text, plan)
        console.print(f"wrote the soak section of {docs}")
    if not report.ok:
        fail("an engine missed the soak's quality bar (see the verdict column)")
