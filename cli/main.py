"""The ``churn`` command: one sub-command per module in this package."""

from __future__ import annotations

from importlib import metadata

import typer

from cli import (
    api,
    bench,
    broker,
    consume,
    contract,
    dlq,
    models_cmd,
    predict,
    produce,
    quality,
    retrain,
    score,
    train,
    up,
)
from cli.console import console, fail, overridden, settings_problem

app = typer.Typer(
    name="churn",
    help="churn-stream: train, serve and stream-score customer churn models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        try:
            version = metadata.version("churn-stream")
        except metadata.PackageNotFoundError:
            version = "unknown (not installed)"
        console.print(f"churn-stream {version}", highlight=False)
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    log_level: str = typer.Option(
        None, "--log-level", help="DEBUG, INFO, WARNING, ERROR or CRITICAL (env CHURN_LOG_LEVEL)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Settings come from CHURN_* environment variables; flags override them."""
    # pydantic-settings loads once a command runs, not for `churn --help`.
    from config.logs import setup_logging
    from config.settings import Settings

    try:
        settings = Settings()
    except ValueError as exc:  # pydantic's ValidationError: a CHURN_* variable it refuses
        fail(settings_problem(exc))
    settings = overridden(settings, log_level=log_level)
    setup_logging(settings.log_level)
    ctx.obj = settings


app.command("train")(train.command)
app.command("retrain")(retrain.command)
app.command("predict")(predict.command)
app.command("broker")(broker.command)
app.command("score")(score.command)
app.command("produce")(produce.command)
app.command("quality")(quality.command)
app.command("consume")(consume.command)
app.command("up")(up.command)
app.command("api")(api.command)
app.add_typer(models_cmd.app, name="models")
app.add_typer(bench.app, name="bench")
app.add_typer(dlq.app, name="dlq")
app.add_typer(contract.app, name="contract")


def run() -> None:
    app()


if __name__ == "__main__":
    run()
