"""``churn broker``: the embedded Kafka-compatible broker (Tansu, in-memory) for local runs."""

from __future__ import annotations

import time

import typer

from cli.console import console, fail, stop_on_signals


def command(
    port: int = typer.Option(9092, "--port", "-p", min=1, max=65535, help="Port to listen on (127.0.0.1)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
) -> None:
    """Run the embedded broker until Ctrl-C / SIGTERM. Data lives in memory only."""
    # The broker's readiness probe loads the Kafka client: imported when it runs, not for `churn --help`.
    from devstack.broker import BrokerError, EmbeddedBroker

    broker = EmbeddedBroker(port=port, host=host)
    # Only a flag: stopping (and reaping) the broker happens in the main flow below.
    stop = stop_on_signals()
    try:
        broker.start()
    except BrokerError as exc:
        fail(str(exc))
        return
    console.print(
        f"embedded broker ready at [bold]{broker.bootstrap}[/] (pid {broker.pid}); "
        "in-memory storage, development only. Ctrl-C stops it."
    )
    try:
        while not stop.is_set() and broker.running():
            time.sleep(0.2)
        code = None if stop.is_set() else broker.wait()
    finally:
        broker.stop()
    if code is not None:
        fail(f"the broker exited on its own with code {code}")
    console.print("broker stopped")
