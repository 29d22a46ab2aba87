"""``churn up``: the whole stack on one machine; one Ctrl-C stops everything it started."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import typer

from cli.console import console, fail, stop_on_signals
from devstack.ports import wait_for_port


def command(
    ctx: typer.Context,
    rate: float = typer.Option(20.0, "--rate", help="Events per second of the demo producer."),
    no_api: bool = typer.Option(False, "--no-api", help="Do not start the API even if it is installed."),
    logs_dir: Path | None = typer.Option(None, "--logs-dir", help="Child logs (default: a temp dir)."),
    train_rows: int = typer.Option(7043, "--train-rows", help="Synthetic rows if a model must be trained."),
    train_candidates: list[str] | None = typer.Option(
        None, "--train-candidate", help="Candidates to train if a model is needed (repeatable; default all)."
    ),
) -> None:
    """Broker (embedded if none answers), a model (trained if none), scorer, API, demo producer."""
    # The stack's Kafka probe and model registry load when the command runs, not for `churn --help`.
    from devstack.broker import BrokerError
    from devstack.stack import Stack

    settings = ctx.obj
    logs = logs_dir or Path(tempfile.mkdtemp(prefix="churn-up-"))
    logs.mkdir(parents=True, exist_ok=True)
    stack = Stack(settings, logs, demo_rate=rate, with_api=not no_api)
    stop = stop_on_signals()
    code = 0
    try:
        try:
            kind = stack.ensure_broker()
        except BrokerError as exc:
            fail(str(exc))
            return
        note = " (embedded, in-memory)" if kind == "embedded" else ""
        console.print(f"Kafka        {settings.kafka_bootstrap_servers}{note}")
        if stack.needs_model():
            trainer = stack.train_model(train_rows, train_candidates)
            with console.status(f"no model in {settings.model_store}: training one on synthetic data..."):
                while trainer.running() and not stop.is_set():
                    time.sleep(0.2)
            if stop.is_set():
                return
            if trainer.process.returncode != 0:
                console.print(f"[red]training failed[/]; see {trainer.log_path}")
                raise typer.Exit(1)  # the finally below still stops the broker
            console.print(f"model        trained and promoted in {settings.model_store}")
        stack.start_services()
        wait_for_port(settings.scorer_web_host, settings.scorer_web_port, timeout=30)
        for child in stack.children:
            console.print(f"{child.name:<12} pid {child.pid}  {child.url or ''}  (log {child.log_path})")
        console.print(
            "watch it:    churn consume   |   churn consume --dlq\n[bold]Ctrl-C stops everything.[/]"
        )
        while not stop.is_set():
            exited = stack.first_exited()
            if exited is not None:
                console.print(
                    f"[red]{exited.name} exited with code {exited.process.returncode}[/]; "
                    f"stopping the stack (see {exited.log_path})"
                )
                code = 1
                break
            time.sleep(0.3)
    finally:
        console.print("stopping...")
        stack.stop()
        console.print("everything stopped")
    if code:
        raise typer.Exit(code)
