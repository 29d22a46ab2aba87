"""``churn bench chaos``: a long crash-safety run (SIGKILL workers while producing) and its audit."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from cli.console import console, fail, overridden


def command(
    ctx: typer.Context,
    events: int = typer.Option(100_000, "--events", "-n", min=1, help="Events to produce."),
    rate: float = typer.Option(2000.0, "--rate", min=1.0, help="Events per second (steady)."),
    kills: int = typer.Option(5, "--kills", min=0, help="SIGKILLs spread over the run."),
    workers: int = typer.Option(1, "--workers", min=1, help="`churn score` workers in the group."),
    no_restart: bool = typer.Option(False, "--no-restart", help="Do not restart a killed worker."),
    bootstrap: str | None = typer.Option(None, "--bootstrap", "-b", help="Kafka (default: embedded broker)."),
    store: Path | None = typer.Option(None, "--store", help="Model store (default CHURN_MODEL_STORE)."),
    workdir: Path = typer.Option(Path("chaos-run"), "--workdir", help="Worker logs go here."),
) -> None:
    """Produce at a steady rate, SIGKILL scorer workers, then check every event was scored."""
    # The harness loads Kafka clients and the producer: imported when it runs, not for `churn --help`.
    from benchmarks.chaos import run_chaos
    from devstack.broker import EmbeddedBroker

    settings = overridden(ctx.obj, model_store=store)
    workdir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if bootstrap is None:
            broker = stack.enter_context(EmbeddedBroker(log_path=workdir / "broker.log"))
            bootstrap = broker.bootstrap
        settings = overridden(settings, kafka_bootstrap_servers=bootstrap)
        console.print(
            f"chaos: {events} events at {rate:g}/s, {kills} SIGKILLs, {workers} worker(s) on {bootstrap}"
        )
        report = run_chaos(
            settings, workdir, events=events, rate=rate, kills=kills, workers=workers, restart=not no_restart
        )
    console.print(
        f"produced {report.produced}; scored {report.unique_scored} unique events; "
        f"missing {report.missing}; duplicates {report.duplicates} "
        f"({100 * report.duplicates / max(report.events, 1):.1f} %); dead letters {report.dead_letters}; "
        f"kills at {report.kill_times} s; {report.seconds:.1f} s in all, "
        f"drained {report.drain_seconds:.1f} s after the last event was produced"
    )
    if not report.ok:
        fail("events were lost or wrongly dead-lettered")
