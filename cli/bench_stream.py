"""``churn bench stream``: scorer throughput against its baselines and peers, e2e latency, RSS.

The measuring is done by :mod:`benchmarks.stream_bench`; this command reads the
options, prints the report and writes it into the docs when asked.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cli.console import console, fail, overridden

#: Every variant, in report order (kept here so that `--help` needs no benchmark code).
ALL_VARIANTS = "raw,floor,scorer,quix,native,scorer-reasons,native-reasons,native-threads"


def command(
    ctx: typer.Context,
    events: int = typer.Option(
        200_000,
        "--events",
        "-n",
        help="Events preloaded and consumed per run (enough that the client's prefetch of a "
        "preloaded topic does not flatter the fast engines).",
    ),
    repeats: int = typer.Option(3, "--repeats", help="Runs of each variant; the median is reported."),
    rates: str = typer.Option(
        "1000,10000", "--latency-rates", help="Steady events/s of the latency runs, comma-separated."
    ),
    seconds: float = typer.Option(10.0, "--latency-seconds", help="Length of each latency run."),
    latency_repeats: int = typer.Option(
        3, "--latency-repeats", help="Latency runs per scorer and rate; the median p50 and p99 are reported."
    ),
    store: Path | None = typer.Option(None, "--store", help="Model store (default CHURN_MODEL_STORE)."),
    docs: Path | None = typer.Option(None, "--write-docs", help="Update the stream section of this file."),
    variants: str = typer.Option(
        ALL_VARIANTS,
        "--variants",
        help="Which rows to measure, comma-separated; also scorer-shadow and native-shadow (an engine "
        "scoring a challenger in shadow: the cost of shadow scoring, as a ratio to the engine alone).",
    ),
    shapes: str = typer.Option(
        "canonical",
        "--shapes",
        help="Event shapes of the throughput runs, comma-separated or `all`: canonical, telco, "
        "strings, idless, mix (telco CSV rows as text, no ids, a third unkeyed). The first is the "
        "main table's; with more, a table per shape and the ratios to the first follow.",
    ),
    profile: Path | None = typer.Option(
        None,
        "--profile",
        help="Record each throughput run with py-spy (extra `bench`) into this folder "
        "(collapsed stacks, one file per run, for any flame-graph viewer).",
    ),
) -> None:
    """Throughput of raw ceiling, Faust floor, Faust / Quix / native scorers (and with reasons); e2e; RSS."""
    # The benchmark loads Kafka clients, the producer and the model registry: imported when it
    # runs, not for `churn --help`.
    from benchmarks import stream_bench
    from benchmarks.event_shapes import shapes_of
    from benchmarks.progress import BenchmarkError
    from benchmarks.quix_peer import MISSING, quix_available

    settings = overridden(ctx.obj, model_store=store)
    try:
        modes = stream_bench.modes_of(variants)
        if "quix" in modes and not quix_available():
            console.print(f"[bold red]{MISSING}[/]; the Quix Streams row is left out of this run")
            modes.remove("quix")
        plan = stream_bench.StreamPlan(
            modes=modes,
            events=events,
            repeats=repeats,
            latency_rates=[float(r) for r in rates.split(",") if r.strip()],
            latency_seconds=seconds,
            latency_repeats=latency_repeats,
            profile=profile,
            shapes=tuple(shapes_of(shapes)),
        )
        report = stream_bench.run(settings, plan, console)
    except (BenchmarkError, ValueError) as exc:
        fail(str(exc))
    console.print(report)
    if docs is not None:
        stream_bench.write_docs(docs, report)
        console.print(f"wrote the stream section of {docs}")
